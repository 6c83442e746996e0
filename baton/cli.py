"""`baton`: Baton from the command line, for integrators and process owners.

Every command calls one method of the typed client (baton.client) and prints its answer as a
table or, with `--output json`, as the service's JSON. Where each service answers and the API
key come from options or the environment (BATON_INTAKE_URL, BATON_ROUTING_URL,
BATON_SLA_URL, BATON_METRICS_URL, BATON_API_KEY, BATON_OUTPUT); the defaults are `make run`'s.

Exit status: 0 done; 1 refused by a service (its problem printed field by field) or, for
`map check`, an invalid map; 2 a usage or input error; 3 a service unreachable.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from pydantic import BaseModel
from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from baton import render
from baton.client import (
    DEV_KEY,
    MAX_BATCH,
    BatchRefused,
    BatonError,
    Client,
    Service,
    Unreachable,
    Urls,
)
from baton.eventlog import LogError, LogFormat, Mapping
from baton.files import Format, InputError, read_events
from shared.contracts import Priority
from shared.events import Outcome
from shared.problem import FieldError, Problem

T = TypeVar("T")

REFUSED, USAGE, UNREACHABLE = 1, 2, 3


class Output(StrEnum):
    """How answers are printed."""

    TABLE = "table"
    JSON = "json"


app = typer.Typer(
    name="baton",
    help="Baton from the command line: post handoff events, follow handoffs and cases, "
    "check and apply the process map. Defaults reach `make run` with its development key.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
map_app = typer.Typer(
    help="The process map: check a file offline, validate it against the map in force, "
    "show the map, reload it, list its versions.",
    no_args_is_help=True,
)
rejections_app = typer.Typer(
    help="Events intake accepted and a service downstream refused: list, show, replay.",
    no_args_is_help=True,
)
app.add_typer(map_app, name="map")
app.add_typer(rejections_app, name="rejections")

_DEFAULTS = Urls()
OutputOption = Annotated[
    Output | None,
    typer.Option("--output", "-o", help="table or json (default: the global --output)"),
]


@dataclass
class Settings:
    """What the global options say: where the services are, the key, the output."""

    urls: Urls
    key: str | None
    output: Output
    timeout: float
    retries: int

    def client(self) -> Client:
        """A client of the services."""
        return Client(self.urls, self.key, timeout=self.timeout, retries=self.retries)


@app.callback()
def main(
    ctx: typer.Context,
    intake_url: Annotated[
        str, typer.Option(envvar="BATON_INTAKE_URL", help="intake's base URL")
    ] = _DEFAULTS.intake,
    routing_url: Annotated[
        str, typer.Option(envvar="BATON_ROUTING_URL", help="routing's base URL")
    ] = _DEFAULTS.routing,
    sla_url: Annotated[
        str, typer.Option(envvar="BATON_SLA_URL", help="sla's base URL")
    ] = _DEFAULTS.sla,
    metrics_url: Annotated[
        str, typer.Option(envvar="BATON_METRICS_URL", help="metrics' base URL")
    ] = _DEFAULTS.metrics,
    key: Annotated[
        str,
        typer.Option(
            envvar="BATON_API_KEY",
            help="API key sent as 'Authorization: Bearer <key>' (default: make run's dev key)",
            show_default=False,
        ),
    ] = DEV_KEY,
    output: Annotated[
        Output, typer.Option("--output", "-o", envvar="BATON_OUTPUT", help="table or json")
    ] = Output.TABLE,
    timeout: Annotated[float, typer.Option(help="seconds to wait for an answer")] = 30.0,
    retries: Annotated[
        int, typer.Option(help="retries of a 503/429 with Retry-After or a refused connection")
    ] = 3,
) -> None:
    """Baton from the command line."""
    urls = Urls(intake=intake_url, routing=routing_url, sla=sla_url, metrics=metrics_url)
    ctx.obj = Settings(urls, key or None, output, timeout, retries)


# --------------------------------------------------------------------------- printing

_err = Console(stderr=True, highlight=False)


def _console() -> Console:
    # Made per command, so it writes to the sys.stdout of the moment (tests capture it).
    return Console(highlight=False, soft_wrap=False)


def _json(value: Any) -> str:
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


@dataclass
class Session:
    """One command's client and output."""

    settings: Settings
    client: Client
    output: Output

    def show(self, result: T, table: Callable[[T], RenderableType]) -> None:
        """Print an answer: the JSON the service sent, or its table."""
        if self.output is Output.JSON:
            typer.echo(_json(result))
        else:
            _console().print(table(result))


def _print_problem(
    output: Output, where: str, problem: Problem, errors: Sequence[FieldError]
) -> None:
    if output is Output.JSON:
        body = problem.model_copy(update={"errors": list(errors)})
        typer.echo(_json(body), err=True)
        return
    detail = f": {problem.detail}" if problem.detail else ""
    _err.print(f"{where}: {problem.status} {problem.title}{detail}", markup=False)
    for error in errors:
        _err.print(f"  {error.field}: {error.reason}", markup=False)


@contextmanager
def session(ctx: typer.Context, output: Output | None) -> Iterator[Session]:
    """The command's client; a refusal or an unreachable service ends it with its status."""
    settings: Settings = ctx.obj
    shown = output or settings.output
    client = settings.client()
    try:
        yield Session(settings, client, shown)
    except BatchRefused as exc:
        done = len(exc.accepted)
        where = (
            f"batch {exc.batch} of {exc.batches} (from event {exc.first}) refused by "
            f"{exc.error.service}; {exc.batch - 1} batch(es), {done} event(s) accepted before it "
            "(posting the same input again retries them, duplicating nothing)"
        )
        _print_problem(shown, where, exc.error.problem, exc.fields())
        raise typer.Exit(REFUSED) from None
    except BatonError as exc:
        where = f"{exc.service} refused {exc.method} {exc.path}"
        _print_problem(shown, where, exc.problem, exc.problem.errors)
        raise typer.Exit(REFUSED) from None
    except Unreachable as exc:
        _err.print(f"cannot reach {exc.service} at {exc.url}: {exc.reason}", markup=False)
        _err.print(f"(set --{exc.service}-url or BATON_{exc.service.upper()}_URL)", markup=False)
        raise typer.Exit(UNREACHABLE) from None
    finally:
        client.close()


def _usage(message: str) -> typer.Exit:
    _err.print(message, markup=False)
    return typer.Exit(USAGE)


def _read_text(source: str) -> tuple[str, str]:
    """The text of a file, or of stdin for '-': (name, text)."""
    if source == "-":
        return "stdin", sys.stdin.read()
    try:
        return source, Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _usage(f"cannot read {source}: {exc}") from None


# --------------------------------------------------------------------------- intake


@app.command()
def post(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="file of events (JSON or JSON lines), '-' for stdin")
    ] = "-",
    fmt: Annotated[Format, typer.Option("--format", "-f", help="how the events are written")] = (
        Format.AUTO
    ),
    idempotency_key: Annotated[
        str | None,
        typer.Option(
            "--idempotency-key",
            "-k",
            help="Idempotency-Key of the batch (batches of several: KEY-1, KEY-2, ...); "
            "default: derived from each batch's content, so posting the same file again is a "
            "safe retry",
        ),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="events per request (intake's INTAKE_MAX_BATCH)")
    ] = MAX_BATCH,
    cloudevents: Annotated[
        bool,
        typer.Option(
            "--cloudevents",
            help="the events are CloudEvents 1.0 (type baton.handoff.<event>, subject the "
            "handoff id, ...), posted in batch mode (application/cloudevents-batch+json)",
        ),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Post lifecycle events (intake's POST /v1/events) from a file or stdin, in batches of
    at most --batch-size, each all accepted or none."""
    name, text = _read_text(source)
    try:
        events = read_events(text, name, fmt)
    except InputError as exc:
        raise _usage(str(exc)) from None
    with session(ctx, output) as s:
        progress = Progress(
            TextColumn("posting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=_err,
            transient=True,
            disable=not _err.is_terminal,
        )
        with progress:
            task = progress.add_task("post", total=len(events))
            result = s.client.post_batches(
                events,
                key_prefix=idempotency_key,
                size=batch_size,
                done=lambda n: progress.advance(task, n),
                cloudevents=cloudevents,
            )
        s.show(result, render.posted)


@app.command("import")
def import_log(
    ctx: typer.Context,
    log: Annotated[Path, typer.Argument(help="event log: .csv, .xes or .xes.gz")],
    fmt: Annotated[
        LogFormat, typer.Option("--format", "-f", help="csv or xes (default: by the name)")
    ] = LogFormat.AUTO,
    case_column: Annotated[
        str | None, typer.Option(help="the case (default: case:concept:name, SR Number, ...)")
    ] = None,
    timestamp_column: Annotated[
        str | None, typer.Option(help="the event's time, ISO 8601 (default: time:timestamp, ...)")
    ] = None,
    team_column: Annotated[
        str | None,
        typer.Option(help="the team or resource (default: org:group, then org:resource, ...)"),
    ] = None,
    activity_column: Annotated[
        str | None, typer.Option(help="the activity (default: concept:name, Activity)")
    ] = None,
    priority_column: Annotated[
        str | None,
        typer.Option(help="priority or impact: P1..P4, 1..4, Major/High/Medium/Low, ..."),
    ] = None,
    timezone: Annotated[str, typer.Option(help="of timestamps written without an offset")] = (
        "UTC"
    ),
    kind: Annotated[str, typer.Option(help="the kind of every handoff (the map's routes)")] = (
        "incident"
    ),
    priority: Annotated[
        Priority, typer.Option(help="the priority when the log gives none")
    ] = Priority.P3,
    state: Annotated[
        Path | None,
        typer.Option(help="the state file of acknowledged batches (default: in .baton-import/)"),
    ] = None,
    restart: Annotated[
        bool, typer.Option(help="post every batch again (duplicating nothing)")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="derive and count, post nothing")] = False,
    batch_size: Annotated[
        int, typer.Option(min=1, max=MAX_BATCH, help="events per request")
    ] = MAX_BATCH,
    output: OutputOption = None,
) -> None:
    """Import an event log (CSV or XES): derive a handoff from every change of team within a
    case (submitted at the sender's last event, accepted at the receiver's first, completed
    when the receiver hands on or the case ends) and post them in event-time order through
    intake's POST /v1/events. Resumable (a state file of the batches acknowledged) and
    idempotent: running it again duplicates nothing."""
    from baton import importer

    mapping = Mapping(
        case=case_column,
        timestamp=timestamp_column,
        team=team_column,
        activity=activity_column,
        priority=priority_column,
        timezone=timezone,
    )
    try:
        planned = importer.plan(
            log, mapping, fmt=fmt, kind=kind, default_priority=priority.value, size=batch_size
        )
    except LogError as exc:
        raise _usage(str(exc)) from None
    settings: Settings = ctx.obj
    shown = output or settings.output
    if dry_run:
        summary = {
            "import_id": planned.import_id,
            "log_events": planned.log_events,
            "handoffs": len(planned.handoffs),
            "events": planned.events,
            "batches": len(planned.batches),
        }
        if shown is Output.JSON:
            typer.echo(_json(summary))
        else:
            _console().print(render.fields("Would import", list(summary.items())))
        return
    progress_state = importer.State(state or importer.default_state(log, planned), planned)
    with session(ctx, output) as s:
        progress = Progress(
            TextColumn(f"importing {log.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            TimeRemainingColumn(),
            console=_err,
            transient=True,
            disable=not _err.is_terminal,
        )
        with progress:
            task = progress.add_task("import", total=planned.events)
            result = importer.run(
                s.client,
                planned,
                progress_state,
                restart=restart,
                done=lambda n: progress.advance(task, n),
            )
        s.show(result, render.imported)


@rejections_app.command("list")
def rejections_list(
    ctx: typer.Context,
    handoff: Annotated[str | None, typer.Option(help="of this handoff")] = None,
    source: Annotated[str | None, typer.Option(help="posted by this upstream system")] = None,
    reason: Annotated[str | None, typer.Option(help="reason code, e.g. no-route")] = None,
    service: Annotated[str | None, typer.Option(help="refused by routing, sla or metrics")] = None,
    case_id: Annotated[str | None, typer.Option("--case", help="of this case")] = None,
    replayed: Annotated[
        bool | None, typer.Option("--replayed/--not-replayed", help="replayed or not yet")
    ] = None,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    output: OutputOption = None,
) -> None:
    """Rejections, newest first (intake's GET /v1/rejections)."""
    with session(ctx, output) as s:
        found = s.client.rejections(
            handoff_id=handoff,
            source=source,
            reason=reason,
            service=service,
            case_id=case_id,
            replayed=replayed,
            offset=offset,
            limit=limit,
        )
        s.show(found, render.rejections)


@rejections_app.command("show")
def rejections_show(
    ctx: typer.Context,
    rejection_id: Annotated[str, typer.Argument(help="<dead-letter topic>:<partition>:<offset>")],
    output: OutputOption = None,
) -> None:
    """One rejection with the event as it was refused."""
    with session(ctx, output) as s:
        s.show(s.client.rejection(rejection_id), render.rejection)


@rejections_app.command("replay")
def rejections_replay(
    ctx: typer.Context,
    rejection_id: Annotated[str, typer.Argument(help="<dead-letter topic>:<partition>:<offset>")],
    force: Annotated[bool, typer.Option(help="replay even if it was replayed before")] = False,
    output: OutputOption = None,
) -> None:
    """Post a refused event again with its own id, once its cause is fixed."""
    with session(ctx, output) as s:
        s.show(s.client.replay(rejection_id, force=force), render.replayed)


# --------------------------------------------------------------------------- sla


@app.command()
def status(
    ctx: typer.Context,
    handoff_id: Annotated[str, typer.Argument(help="the handoff's id")],
    output: OutputOption = None,
) -> None:
    """A handoff's status: every clock of every cycle, and its history (sla)."""
    with session(ctx, output) as s:
        s.show(s.client.status(handoff_id), render.status)


@app.command()
def case(
    ctx: typer.Context,
    case_id: Annotated[str, typer.Argument(help="the case's id")],
    output: OutputOption = None,
) -> None:
    """A case: the teams it visited, who held it how long, what was late, ping-pong (sla)."""
    with session(ctx, output) as s:
        s.show(s.client.case(case_id), render.case)


def _instant(text: str) -> datetime:
    """An ISO 8601 instant as given on the command line (2026-11-23, 2026-11-23T09:30,
    2026-11-23T09:30:00+01:00, ...Z); without an offset it is read as UTC (sla wants one)."""
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        message = f"{text!r} is not an ISO 8601 instant, e.g. 2026-11-23T09:30Z"
        raise typer.BadParameter(message) from None
    return instant if instant.tzinfo is not None else instant.replace(tzinfo=UTC)


def _list_command(view: str, summary: str) -> None:
    def command(
        ctx: typer.Context,
        from_process: Annotated[str | None, typer.Option("--from", help="supplier")] = None,
        to_process: Annotated[str | None, typer.Option("--to", help="receiver")] = None,
        kind: Annotated[str | None, typer.Option(help="kind of handoff")] = None,
        priority: Annotated[Priority | None, typer.Option(help="P1 .. P4")] = None,
        limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
        output: OutputOption = None,
    ) -> None:
        with session(ctx, output) as s:
            found = s.client.handoffs(
                view,  # type: ignore[arg-type]
                from_process=from_process,
                to_process=to_process,
                kind=kind,
                priority=priority,
                limit=limit,
            )
            s.show(found, render.handoff_list)

    command.__doc__ = summary
    app.command(view)(command)


_list_command("open", "Open handoffs, most urgent first (sla).")
_list_command("at-risk", "Open handoffs past a warning threshold, most urgent first (sla).")
_list_command("overdue", "Handoffs past a deadline, most overdue first (sla).")


@app.command()
def closed(
    ctx: typer.Context,
    from_process: Annotated[str | None, typer.Option("--from", help="supplier")] = None,
    to_process: Annotated[str | None, typer.Option("--to", help="receiver")] = None,
    kind: Annotated[str | None, typer.Option(help="kind of handoff")] = None,
    priority: Annotated[Priority | None, typer.Option(help="P1 .. P4")] = None,
    since: Annotated[
        datetime | None,
        typer.Option(
            parser=_instant, metavar="INSTANT", help="closed at or after (UTC unless an offset)"
        ),
    ] = None,
    until: Annotated[
        datetime | None,
        typer.Option(parser=_instant, metavar="INSTANT", help="closed before (likewise)"),
    ] = None,
    outcome: Annotated[
        Outcome | None, typer.Option(help="missed: a clock missed its target; met: none")
    ] = None,
    cursor: Annotated[
        str | None, typer.Option(help="the `next` of the page before (default: the first page)")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="handoffs per page")] = 100,
    output: OutputOption = None,
) -> None:
    """Completed and cancelled handoffs, latest first, one page at a time (sla's GET
    /v1/closed): by pair, kind, priority, period and outcome."""
    with session(ctx, output) as s:
        found = s.client.closed(
            from_process=from_process,
            to_process=to_process,
            kind=kind,
            priority=priority,
            since=since,
            until=until,
            outcome=outcome,
            cursor=cursor,
            limit=limit,
        )
        s.show(found, render.closed_list)


# --------------------------------------------------------------------------- routing


@map_app.command("check")
def map_check(
    ctx: typer.Context,
    file: Annotated[Path | None, typer.Argument(help="default: deploy/process-map.yaml")] = None,
    output: OutputOption = None,
) -> None:
    """Check a process map file offline, as routing does at start-up (`python -m routing
    check`): every error with its path; exit status 1 when it has any."""
    # The YAML loader is this command's alone: imported here, not by every command.
    from routing.adapters.mapfile import read_map_file
    from routing.domain.processmap import InvalidProcessMap
    from routing.settings import DEFAULT_MAP

    path = file or DEFAULT_MAP
    settings: Settings = ctx.obj
    output = output or settings.output
    try:
        draft = read_map_file(path)
    except InvalidProcessMap as exc:
        errors = [FieldError(field=e.path, reason=e.reason) for e in exc.errors]
        if output is Output.JSON:
            typer.echo(_json({"valid": False, "errors": [e.model_dump() for e in errors]}))
        else:
            _console().print(render.problems(f"{path}: {len(errors)} error(s)", errors))
        raise typer.Exit(REFUSED) from None
    summary = {
        "valid": True,
        "calendars": len(draft.calendars),
        "processes": len(draft.processes),
        "routes": len(draft.routes),
    }
    if output is Output.JSON:
        typer.echo(_json(summary))
    else:
        typer.echo(
            f"{path}: valid ({summary['calendars']} calendars, {summary['processes']} "
            f"processes, {summary['routes']} routes)"
        )


@map_app.command("validate")
def map_validate(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="map file (YAML), '-' for stdin")],
    output: OutputOption = None,
) -> None:
    """Validate a map against the map in force (routing's POST /v1/map/validate): every error,
    or the standard versions it would get. Nothing is applied."""
    _, text = _read_text(source)
    with session(ctx, output) as s:
        s.show(s.client.validate_map(text), render.map_summary)


@map_app.command("show")
def map_show(ctx: typer.Context, output: OutputOption = None) -> None:
    """The process map in force: calendars, processes, routes and their standards."""
    with session(ctx, output) as s:
        s.show(s.client.process_map(), render.process_map)


@map_app.command("reload")
def map_reload(
    ctx: typer.Context,
    revision: Annotated[str | None, typer.Option(help="recorded with the version")] = None,
    author: Annotated[str | None, typer.Option(help="who publishes it")] = None,
    output: OutputOption = None,
) -> None:
    """Have routing read its map file again and put it in force (POST /v1/map/reload); a
    file with errors changes nothing."""
    with session(ctx, output) as s:
        s.show(s.client.reload_map(revision=revision, author=author), render.reloaded)


@map_app.command("versions")
def map_versions(ctx: typer.Context, output: OutputOption = None) -> None:
    """Every published version of the map, newest first: who, when, what changed."""
    with session(ctx, output) as s:
        s.show(s.client.map_versions(), render.map_versions)


# --------------------------------------------------------------------------- all services


@app.command()
def health(ctx: typer.Context, output: OutputOption = None) -> None:
    """Whether each service is ready (GET /health/ready); exit status 3 if one is not."""
    with session(ctx, output) as s:
        rows: list[tuple[str, str, str, str]] = []
        answers: dict[str, Any] = {}
        for service in Service:
            url = s.client.urls.of(service)
            try:
                body = s.client.ready(service)
            except Unreachable as exc:
                body = {"status": "unreachable", "reason": exc.reason}
            answers[service.value] = body
            checks = body.get("checks", {})
            failing = ", ".join(k for k, ok in checks.items() if not ok)
            rows.append((service.value, url, str(body.get("status")), failing or "-"))
        s.show(answers, lambda _: render.health(rows))
        if any(a.get("status") != "ready" for a in answers.values()):
            raise typer.Exit(UNREACHABLE)
