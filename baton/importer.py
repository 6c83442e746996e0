"""`baton import`: an event log's handoffs posted through intake's batch API, resumable.

The log is read (baton.eventlog), its handoffs derived (baton.derive), their events put in
event-time order and cut into batches (at most 1000 events and intake's body limit). Batch n
of an import is posted with the Idempotency-Key `import-<id>-<n>`, `<id>` a digest of the
file's bytes, the mapping and the options, and every event has its own deterministic id: a
batch posted twice (a retry, a re-run, a resume after a crash) is answered as the first time,
and sla counts each event once.

A small JSON state file records how many batches intake acknowledged: a re-run starts after
them (`--restart` posts them all again, duplicating nothing all the same).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from baton.client import MAX_BATCH, BatchRefused, BatonError, Client, batches
from baton.derive import Handoff, derive, posted_events
from baton.eventlog import LogFormat, Mapping, digest, read_log


@dataclass(frozen=True)
class Plan:
    """What an import posts: the handoffs, their events in time order, cut in batches."""

    import_id: str
    mapping: Mapping
    log_events: int
    handoffs: Sequence[Handoff]
    batches: Sequence[Sequence[dict[str, Any]]]

    @property
    def events(self) -> int:
        return sum(len(b) for b in self.batches)

    def key(self, index: int) -> str:
        """The Idempotency-Key of batch `index` (0-based)."""
        return f"import-{self.import_id}-{index + 1}"


def plan(
    path: Path,
    mapping: Mapping,
    *,
    fmt: LogFormat = LogFormat.AUTO,
    kind: str = "incident",
    default_priority: str = "P3",
    size: int = MAX_BATCH,
) -> Plan:
    """Read the log and derive what its import posts (nothing is sent)."""
    resolved, events = read_log(path, mapping, fmt)
    handoffs = derive(events, default_priority)
    identity = json.dumps(
        [digest(path), asdict(resolved), kind, default_priority, size], sort_keys=True
    )
    import_id = hashlib.sha256(identity.encode()).hexdigest()[:20]
    chunks = batches(posted_events(handoffs, kind), size)
    posted = cast(list[list[dict[str, Any]]], [list(c) for c in chunks])
    return Plan(import_id, resolved, len(events), handoffs, posted)


class State:
    """The batches of one import intake acknowledged, in a JSON file (written atomically)."""

    def __init__(self, path: Path, plan: Plan) -> None:
        self.path = path
        self.plan = plan

    def acknowledged(self) -> int:
        """How many batches, from the first, are acknowledged (0 for another import's file)."""
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return 0
        if not isinstance(saved, dict) or saved.get("import_id") != self.plan.import_id:
            return 0
        done = saved.get("acknowledged", 0)
        return done if isinstance(done, int) and 0 <= done <= len(self.plan.batches) else 0

    def save(self, acknowledged: int) -> None:
        body = {
            "import_id": self.plan.import_id,
            "batches": len(self.plan.batches),
            "acknowledged": acknowledged,
            "events": self.plan.events,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        scratch = self.path.with_name(self.path.name + ".tmp")
        scratch.write_text(json.dumps(body) + "\n", encoding="utf-8")
        os.replace(scratch, self.path)


@dataclass(frozen=True)
class Imported:
    """What an import did."""

    import_id: str
    log_events: int
    handoffs: int
    events: int
    batches: int
    posted_batches: int
    skipped_batches: int
    state: str


def run(
    client: Client,
    plan: Plan,
    state: State,
    *,
    restart: bool = False,
    done: Callable[[int], None] | None = None,
) -> Imported:
    """Post the batches not yet acknowledged, in order, saving the state after each; a
    refused batch raises BatchRefused (the state keeps the ones before it)."""
    start = 0 if restart else state.acknowledged()
    if done is not None and start:
        done(sum(len(b) for b in plan.batches[:start]))
    first = sum(len(b) for b in plan.batches[:start])
    for index in range(start, len(plan.batches)):
        chunk = plan.batches[index]
        try:
            client.post_events(chunk, plan.key(index))
        except BatonError as exc:
            raise BatchRefused(exc, index + 1, len(plan.batches), first, []) from None
        state.save(index + 1)
        first += len(chunk)
        if done is not None:
            done(len(chunk))
    return Imported(
        import_id=plan.import_id,
        log_events=plan.log_events,
        handoffs=len(plan.handoffs),
        events=plan.events,
        batches=len(plan.batches),
        posted_batches=len(plan.batches) - start,
        skipped_batches=start,
        state=str(state.path),
    )


def default_state(log: Path, plan: Plan) -> Path:
    """Where an import's state is kept unless told: .baton-import/ of the working directory,
    one file per log and import id."""
    return Path(".baton-import") / f"{log.name}-{plan.import_id}.json"
