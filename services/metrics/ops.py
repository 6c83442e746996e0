"""`python -m metrics.ops generate [MAP] [--out deploy]`: regenerate what ops teams get from a
process map -- Prometheus rules, Alertmanager routes, Grafana dashboards (`make ops`).

`--check` writes nothing and exits 1 when a committed file differs from what the map gives
(CI runs it: stale rules fail the build). The map is read and checked by routing's own loader,
the one place the map file format lives.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path

from metrics.adapters.opsfiles import render, stale_files, write_files
from metrics.domain.ops.generate import documents
from metrics.domain.ops.settings import Links, OpsSettings, Profile
from routing.adapters.mapfile import read_map_file
from routing.domain.processmap import InvalidProcessMap
from shared.clock import Clock, SystemClock
from shared.contracts import ProcessMapV1

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MAP = REPO / "deploy" / "process-map.yaml"
DEFAULT_OUT = REPO / "deploy"
_DEFAULTS = Links()
_PROFILE = Profile()
_SETTINGS = OpsSettings()


def _years(text: str) -> tuple[int, ...]:
    try:
        years = tuple(sorted({int(y) for y in text.split(",") if y.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"years as 2026,2027, got {text!r}") from None
    if not years or any(not 1970 <= y <= 2200 for y in years):
        raise argparse.ArgumentTypeError(f"years between 1970 and 2200, got {text!r}")
    return years


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = argparse.ArgumentParser(prog="python -m metrics.ops", description=__doc__)
    commands = p.add_subparsers(dest="command", required=True)
    g = commands.add_parser("generate", help="write deploy/prometheus, alertmanager, grafana")
    g.add_argument("map", nargs="?", type=Path, default=DEFAULT_MAP)
    g.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder (default: deploy/)")
    g.add_argument("--check", action="store_true", help="compare only; exit 1 when stale")
    g.add_argument("--grafana-url", default=_DEFAULTS.grafana)
    g.add_argument("--sla-url", default=_DEFAULTS.sla, help="base of the overdue-list links")
    g.add_argument("--runbook-url", default=_DEFAULTS.runbook)
    g.add_argument(
        "--holiday-years",
        type=_years,
        help="years of public holidays in Alertmanager's calendars (default: this year and next)",
    )
    g.add_argument("--interval", default=_PROFILE.interval, help="rule evaluation interval")
    g.add_argument("--long-interval", default=_PROFILE.long_interval)
    g.add_argument("--no-hold", action="store_true", help="drop every alert's `for` (tests)")
    g.add_argument("--min-page-events", type=int, default=_PROFILE.min_page_events)
    g.add_argument("--webhook-url", help="also notify this webhook from every receiver")
    g.add_argument("--group-wait", default=_SETTINGS.group_wait, help="Alertmanager group_wait")
    return p


def command_line(args: argparse.Namespace, years: tuple[int, ...]) -> str:
    """The options that made the files, for their header (defaults left out)."""
    parts = ["python", "-m", "metrics.ops", "generate", _relative(args.map)]
    options = {
        "--grafana-url": (args.grafana_url, _DEFAULTS.grafana),
        "--sla-url": (args.sla_url, _DEFAULTS.sla),
        "--runbook-url": (args.runbook_url, _DEFAULTS.runbook),
        "--interval": (args.interval, _PROFILE.interval),
        "--long-interval": (args.long_interval, _PROFILE.long_interval),
        "--min-page-events": (args.min_page_events, _PROFILE.min_page_events),
        "--webhook-url": (args.webhook_url, None),
        "--group-wait": (args.group_wait, _SETTINGS.group_wait),
    }
    for flag, (value, default) in options.items():
        if value != default:
            parts += [flag, str(value)]
    if args.no_hold:
        parts.append("--no-hold")
    parts += ["--holiday-years", ",".join(str(y) for y in years)]
    return shlex.join(parts)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def load_map(path: Path) -> ProcessMapV1:
    """The map file as the published shape (the version and time do not matter here)."""
    draft = read_map_file(path)
    return ProcessMapV1(
        version=1,
        published_at=datetime(1970, 1, 1, tzinfo=UTC),
        source=str(path),
        calendars=draft.calendars,
        processes=draft.processes,
        routes=draft.routes,
    )


def main(argv: list[str] | None = None, clock: Clock | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = parser().parse_args(argv)
    clock = clock or SystemClock()
    this_year = clock.now().year
    years: tuple[int, ...] = args.holiday_years or (this_year, this_year + 1)
    try:
        process_map = load_map(args.map)
    except InvalidProcessMap as exc:
        print(exc, file=sys.stderr)
        return 1
    settings = OpsSettings(
        links=Links(grafana=args.grafana_url, sla=args.sla_url, runbook=args.runbook_url),
        profile=Profile(
            interval=args.interval,
            long_interval=args.long_interval,
            hold=not args.no_hold,
            min_page_events=args.min_page_events,
        ),
        holiday_years=years,
        webhook_url=args.webhook_url,
        group_wait=args.group_wait,
    )
    texts = render(documents(process_map, settings), command_line(args, years))
    if args.check:
        stale = stale_files(args.out, texts)
        for path in stale:
            print(f"stale: {args.out / path} (run `make ops` and commit)", file=sys.stderr)
        if not stale:
            print(f"{len(texts)} generated files up to date with {args.map}")
        return 1 if stale else 0
    changed = write_files(args.out, texts)
    for path in changed:
        print(f"wrote {args.out / path}")
    print(f"{len(texts)} files generated from {args.map} ({len(changed)} changed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
