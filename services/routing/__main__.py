"""routing's command line.

- `python -m routing check [FILE]`: validate a process map offline (CI for the GitOps repo);
  exit status 0 when the map is valid, 1 with every error listed otherwise.
- `python -m routing generate-bpi [CSV] [-o FILE]`: write the process map of the BPI
  Challenge 2013 incident log (649 teams, default routes), checked before it is written.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from routing.adapters.bpi import BpiLogError, bpi_map_yaml, read_teams
from routing.adapters.mapfile import parse_map_text, read_map_file
from routing.domain.processmap import InvalidProcessMap
from routing.settings import DEFAULT_MAP, REPO_ROOT
from shared.clock import SystemClock


def bpi_log() -> Path:
    """The BPI Challenge 2013 log: in ../shared/datasets beside the repo, or BATON_DATASETS."""
    datasets = os.environ.get("BATON_DATASETS") or REPO_ROOT.parent / "shared" / "datasets"
    return Path(datasets) / "VINST-new.csv"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m routing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a process map file")
    check.add_argument("file", nargs="?", type=Path, default=DEFAULT_MAP)
    bpi = commands.add_parser("generate-bpi", help="the BPI Challenge 2013 map (649 teams)")
    bpi.add_argument("csv", nargs="?", type=Path, help="default: ../shared/datasets/VINST-new.csv")
    bpi.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    if args.command == "generate-bpi":
        return generate_bpi(args.csv or bpi_log(), args.output)
    try:
        draft = read_map_file(args.file, checked_at=SystemClock().now())
    except InvalidProcessMap as exc:
        print(exc, file=sys.stderr)
        return 1
    print(
        f"{args.file}: valid ({len(draft.calendars)} calendars, {len(draft.processes)} "
        f"processes, {len(draft.routes)} routes)"
    )
    return 0


def generate_bpi(log: Path, output: Path | None) -> int:
    """Write the BPI Challenge 2013 map; 1 when the log cannot be read."""
    try:
        text = bpi_map_yaml(read_teams(log), log.name)
    except (OSError, BpiLogError) as exc:
        print(f"cannot generate the BPI map: {exc}", file=sys.stderr)
        return 1
    draft = parse_map_text(text, "generated")  # never write a map routing would refuse
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    print(
        f"{output or 'stdout'}: {len(draft.processes)} processes, {len(draft.routes)} routes "
        f"(default routes from any team), {len(text)} bytes",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
