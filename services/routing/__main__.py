"""`python -m routing check [FILE]`: validate a process map offline (CI for the GitOps repo).

Exit status 0 when the map is valid, 1 with every error listed otherwise.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from routing.adapters.mapfile import read_map_file
from routing.domain.processmap import InvalidProcessMap
from routing.settings import DEFAULT_MAP
from shared.clock import SystemClock


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m routing", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate a process map file")
    check.add_argument("file", nargs="?", type=Path, default=DEFAULT_MAP)
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
