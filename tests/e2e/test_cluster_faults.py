"""Baton on a three-broker Kafka cluster under faults: nothing lost, nothing decided twice.

Three KRaft nodes on loopback (deploy/kafka/cluster.sh), Baton's topics replicated 3 times with
min.insync.replicas 2; one intake and two instances each of routing, sla and metrics, each its
own process. A steady load of handoffs (submitted, accepted, completed: both clocks met) is
posted through intake while, in turn, one broker is SIGKILLed and restarted, then one instance
of routing, of sla and of metrics is SIGKILLed and restarted. The load behaves as the README asks
of an upstream system: a 503 or a dropped connection is retried with the same event ids.

Pinned: every accepted event reaches handoff.events.v1 and handoff.routed.v1; every handoff gets
its opened decision and exactly one met outcome per clock; no decision is written twice; the
two metrics shards' counters together equal the decisions written.
Printed (and quoted in README, "Three brokers under faults"): events accepted, lost, duplicate
outcomes, metrics counters against the truth, time to recover, and how long decisions stalled
on the instances that were not killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from e2e_system import API_KEY
from shared.events import Envelope
from shared.kafka import LogFollower, Received, client_options, ensure_topics
from shared.settings import KafkaSettings
from shared.topics import Stream
from support import REPO, Cluster, ServiceProcess, read_all, service_env, wait_for

pytestmark = pytest.mark.cluster

CLUSTER_PORT = int(os.environ.get("BATON_TEST_CLUSTER_PORT", "19211"))
RATE = float(os.environ.get("BATON_CLUSTER_RATE", "8"))
"""Handoffs per second posted through intake (three events each)."""
WORKERS = 8
RETRY_S = 0.25
"""How soon the load retries a refused request (a real client would honour Retry-After)."""
AUTH = {"Authorization": f"Bearer {API_KEY}"}
FIGURES = REPO / ".run" / "test-logs" / "cluster-figures.json"


# --------------------------------------------------------------------------- the load


class Load:
    """Handoffs posted through intake at a steady rate; every request retried until accepted."""

    def __init__(self, url: str, rate: float, workers: int) -> None:
        self._url = url
        self._period = workers / rate
        self._workers = workers
        self.accepted: set[str] = set()
        """Event ids intake answered 202 for."""
        self.complete: list[str] = []
        """Handoffs whose three events were all accepted."""
        self.refusals: list[tuple[float, str]] = []
        """(wall time, status or error) of every refused attempt."""

    async def run(self, stop: asyncio.Event) -> None:
        """Post until `stop` is set; each worker finishes the handoff in hand."""
        await asyncio.gather(*(self._worker(i, stop) for i in range(self._workers)))

    async def _worker(self, index: int, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + index * self._period / self._workers
        async with httpx.AsyncClient(base_url=self._url, headers=AUTH, timeout=15.0) as client:
            for n in range(1_000_000):
                await asyncio.sleep(max(0.0, next_at - loop.time()))  # pacing, not waiting
                if stop.is_set():
                    return
                next_at = max(next_at + self._period, loop.time())
                hid = f"k{index}-{n}"
                submitted = {
                    "handoff_id": hid,
                    "event_id": f"{hid}-submitted",
                    "case_id": f"case-{hid}",
                    "kind": "heartbeat",
                    "from": "service-desk",
                    "priority": "P4",
                }
                await self._post(client, "/v1/handoffs", submitted)
                for kind in ("accepted", "completed"):
                    event = {"type": kind, "event_id": f"{hid}-{kind}"}
                    await self._post(client, f"/v1/handoffs/{hid}/events", event)
                self.complete.append(hid)

    async def _post(self, client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> None:
        while True:
            try:
                answer = await client.post(path, json=body)
            except httpx.TransportError as exc:
                self.refusals.append((time.time(), type(exc).__name__))
            else:
                if answer.status_code == 202:
                    self.accepted.add(body["event_id"])
                    return
                if answer.status_code not in (502, 503, 504):
                    raise AssertionError(f"{path} answered {answer.status_code}: {answer.text}")
                self.refusals.append((time.time(), str(answer.status_code)))
            await asyncio.sleep(RETRY_S)


# --------------------------------------------------------------------------- watching


Samples = dict[str, list[tuple[dict[str, str], float]]]
WATCHED = (
    "handoff_opened_total",
    "handoff_target_outcomes_total",
    "handoff_consumer_lag_records",
    "handoff_sla_handoffs",
)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


async def scrape(url: str) -> Samples:
    """The samples of the few families this test reads from a service's /metrics (a line scan:
    the full parser would take a share of the two cores the system under test needs)."""
    async with httpx.AsyncClient(base_url=url, timeout=5.0) as client:
        text = (await client.get("/metrics")).text
    out: Samples = defaultdict(list)
    for line in text.splitlines():
        if line.startswith(WATCHED):
            head, _, value = line.rpartition(" ")
            name, _, labels = head.partition("{")
            out[name].append((dict(_LABEL.findall(labels)), float(value)))
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of a metric's samples whose labels include `labels`."""
    return sum(v for ls, v in samples.get(name, []) if labels.items() <= ls.items())


def partitions(samples: Samples, name: str, **labels: str) -> set[int]:
    """The partitions a per-partition metric has samples for: what the instance owns."""
    return {int(ls["partition"]) for ls, _ in samples.get(name, []) if labels.items() <= ls.items()}


@dataclass
class Counted:
    """One scrape of a metrics instance: when, and its business counters."""

    at: float
    opened: float
    met: float


class MetricsWatch:
    """Scrapes both metrics instances every second, keeping every lifetime's counters."""

    def __init__(self, instances: Sequence[ServiceProcess]) -> None:
        self._instances = instances
        self.series: dict[str, list[Counted]] = {p.name: [] for p in instances}

    async def run(self) -> None:
        """Scrape until cancelled (an instance that is down is skipped)."""
        while True:
            for proc in self._instances:
                with contextlib.suppress(httpx.HTTPError):
                    s = await scrape(proc.url)
                    met = total(s, "handoff_target_outcomes_total", outcome="met")
                    self.series[proc.name].append(
                        Counted(time.time(), total(s, "handoff_opened_total"), met)
                    )
            await asyncio.sleep(1.0)

    def last_before(self, name: str, moment: float) -> Counted | None:
        """What an instance exposed at its last scrape before `moment` (its death)."""
        before = [c for c in self.series[name] if c.at < moment]
        return before[-1] if before else None


class DecisionFollower:
    """Follows sla.decisions.v1 (read_committed) as it is written: when each partition last
    got a decision, so the test can wait until every partition is flowing again."""

    def __init__(self, kafka: KafkaSettings) -> None:
        self.latest: dict[int, float] = {}
        self.reader = LogFollower(kafka, [kafka.topics.name(Stream.DECISIONS)], self._on)

    def _on(self, record: Received) -> None:
        self.latest[record.partition] = max(
            self.latest.get(record.partition, 0.0), record.timestamp_ms / 1000
        )

    def flowing_since(self, moment: float, count: int) -> bool:
        """Every one of `count` partitions got a decision after `moment`."""
        return all(self.latest.get(p, 0.0) > moment for p in range(count))


@dataclass
class Fault:
    """One SIGKILL and restart, and what was measured around it."""

    what: str
    kill_at: float
    survivors: set[int] | None = None
    """Partitions the surviving instance owned at the kill (None: a broker, no survivor)."""
    survivor: str | None = None
    back_at: float = 0.0
    """The killed broker in every ISR again, or the restarted instance ready."""
    window_end: float = 0.0


def longest_gap(
    times: Sequence[float], start: float, end: float, *, inside: bool = False
) -> tuple[float, float]:
    """The longest pause between consecutive decisions overlapping [start, end] (or, `inside`,
    within it): (its length, when it ended)."""
    best = (0.0, start)
    for a, b in pairwise(times):
        within = a >= start and b <= end if inside else b >= start and a <= end
        if within and b - a > best[0]:
            best = (b - a, b)
    return best


def longest_flat(series: Sequence[Counted], start: float, end: float) -> float:
    """The longest time a counter did not move within [start, end] (scrape resolution)."""
    inside = [c for c in series if start <= c.at <= end]
    best, since = 0.0, None
    for previous, current in pairwise(inside):
        if current.opened == previous.opened:
            since = previous.at if since is None else since
            best = max(best, current.at - since)
        else:
            since = None
    return best


# --------------------------------------------------------------------------- the system


def instances(kafka: KafkaSettings) -> dict[str, list[ServiceProcess]]:
    """intake once; routing, sla and metrics twice: every one its own process."""
    env = {
        "intake": service_env("INTAKE_", kafka),
        "routing": {
            **service_env("ROUTING_", kafka),
            "ROUTING_PROCESS_MAP": str(REPO / "deploy" / "process-map.yaml"),
        },
        "sla": service_env("SLA_", kafka),
        "metrics": service_env("METRICS_", kafka),
    }
    # metrics scales by pairs, not partitions: two instances are shards 0 and 1 of 2.
    shard = {"metrics": {"a": {"METRICS_SHARDS": "2", "METRICS_SHARD": "0"}}}
    shard["metrics"]["b"] = {"METRICS_SHARDS": "2", "METRICS_SHARD": "1"}
    return {
        name: [
            ServiceProcess(
                f"{name}.main", {**e, **shard.get(name, {}).get(x, {})}, f"cluster-{name}-{x}"
            )
            for x in ("ab" if name != "intake" else "a")
        ]
        for name, e in env.items()
    }


async def replication(kafka: KafkaSettings) -> tuple[set[int], str | None]:
    """Replica counts of Baton's topics, and one topic's min.insync.replicas (None while the
    broker asked has not yet learned the new topic's configuration)."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        names = [s.name for s in kafka.topics.specs()]
        described = await admin.describe_topics(names)
        replicas = {len(p["replicas"]) for d in described for p in d["partitions"]}
        routed = kafka.topics.name(Stream.ROUTED)
        configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, routed)])
        entries = {e[0]: e[1] for e in configs[0].resources[0][4]}
        return replicas, entries.get("min.insync.replicas")
    finally:
        await admin.close()


async def coordinator_and_isr(kafka: KafkaSettings) -> tuple[int, int]:
    """The node leading the consumer-offsets partition (every group's coordinator) and the
    smallest ISR among Baton's partitions."""
    admin = AIOKafkaAdminClient(**client_options(kafka))
    await admin.start()
    try:
        offsets = await admin.describe_topics(["__consumer_offsets"])
        leader = int(offsets[0]["partitions"][0]["leader"])
        described = await admin.describe_topics([s.name for s in kafka.topics.specs()])
        isr = min(len(p["isr"]) for d in described for p in d["partitions"])
        return leader, isr
    finally:
        await admin.close()


# --------------------------------------------------------------------------- the test


async def test_a_broker_kill_and_a_kill_of_each_service_lose_nothing_and_decide_nothing_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    began = time.time()
    cluster = Cluster(CLUSTER_PORT, "test")
    cluster.clean()
    try:
        await asyncio.to_thread(cluster.start)
        phases = {"cluster_started": time.time() - began}
        await exercise(cluster, began, phases, capsys)
    finally:
        cluster.clean()


async def exercise(
    cluster: Cluster, began: float, phases: dict[str, float], capsys: pytest.CaptureFixture[str]
) -> None:
    """Start the system on the cluster, load it, inject the faults, check and report."""
    kafka = KafkaSettings(
        bootstrap_servers=cluster.bootstrap,
        topic_prefix=f"c{int(began)}.",
        partitions=6,
        replication_factor=3,
        min_insync_replicas=2,
        request_timeout_ms=10000,
    )
    await ensure_topics(kafka)

    async def replicated() -> tuple[set[int], str] | None:
        # Topic metadata reaches the three nodes one after the other: ask until it has.
        replicas, min_isr = await replication(kafka)
        return None if min_isr is None else (replicas, min_isr)

    assert await wait_for(replicated, within=30, what="the topics' configuration") == ({3}, "2")

    procs = instances(kafka)
    everyone = [p for group in procs.values() for p in group]
    follower = DecisionFollower(kafka)
    watch = MetricsWatch(procs["metrics"])
    stop = asyncio.Event()
    faults: list[Fault] = []
    tasks: list[asyncio.Task[None]] = []
    for proc in everyone:
        proc.start()
    try:
        await asyncio.gather(*(p.ready(within=120) for p in everyone))
        started = time.time()
        phases["services_ready"] = started - began
        await follower.reader.start()
        load = Load(procs["intake"][0].url, RATE, WORKERS)
        load_task = asyncio.create_task(load.run(stop))
        tasks.append(asyncio.create_task(watch.run()))
        await wait_for(
            lambda: follower.flowing_since(started, kafka.partitions),
            within=60,
            what="decisions on every partition",
        )
        await asyncio.sleep(6)  # steady load: the baseline the stalls are compared with

        # One broker: the group coordinator's node, SIGKILLed, restarted, back in every ISR.
        node, _ = await coordinator_and_isr(kafka)
        fault = Fault(f"broker {node} (group coordinator)", time.time())
        cluster.kill(node)
        faults.append(fault)
        await asyncio.sleep(3)  # the cluster runs on two brokers meanwhile
        await asyncio.to_thread(cluster.start_node, node)

        async def isr_full() -> bool:
            return (await coordinator_and_isr(kafka))[1] == 3

        await wait_for(isr_full, within=90, interval=0.5, what="the broker back in every ISR")
        fault.back_at = time.time()
        await wait_for(
            lambda: follower.flowing_since(fault.back_at, kafka.partitions),
            within=60,
            what="decisions after the broker fault",
        )

        # Then one instance of each service: SIGKILL, restart at once, ready again.
        for service, owned, labels in (
            ("routing", "handoff_consumer_lag_records", {"topic": kafka.topics.name(Stream.RAW)}),
            ("sla", "handoff_sla_handoffs", {}),
            ("metrics", "handoff_consumer_lag_records", {}),
        ):
            victim, survivor = procs[service]
            fault = Fault(f"{service} instance", 0.0, survivor=survivor.name)
            fault.survivors = partitions(await scrape(survivor.url), owned, **labels)
            fault.kill_at = time.time()
            victim.kill()
            faults.append(fault)
            victim.start()
            await victim.ready(within=90)
            fault.back_at = back = time.time()
            await wait_for(
                lambda back=back: follower.flowing_since(back, kafka.partitions),
                within=60,
                what=f"decisions after the {service} fault",
            )
        await asyncio.sleep(3)
        ended = time.time()
        phases["faults_done"] = ended - began
        stop.set()
        await asyncio.wait_for(load_task, timeout=120)

        # Drain: every accepted handoff decided, both metrics instances settled.
        expected = set(load.complete)

        async def decided() -> list[Envelope] | None:
            envelopes = await decisions(kafka)
            opened = {e.key for e in envelopes if e.event_type == "sla.opened"}
            done = opened >= expected and met_count(envelopes) >= 2 * len(expected)
            return envelopes if done else None

        envelopes = await wait_for(decided, within=120, interval=1.0, what="every decision")
        truth_opened = sum(1 for e in envelopes if e.event_type == "sla.opened")
        truth_met = met_count(envelopes)
        previous: list[tuple[float, float]] = []

        async def metrics_settled() -> tuple[float, float] | None:
            """Both instances caught up (no lag) and unchanged since the previous scrape."""
            scraped = [await scrape(p.url) for p in procs["metrics"]]
            lag = sum(total(s, "handoff_consumer_lag_records") for s in scraped)
            opened = sum(total(s, "handoff_opened_total") for s in scraped)
            met = sum(total(s, "handoff_target_outcomes_total", outcome="met") for s in scraped)
            stable = previous == [(opened, met)]
            previous[:] = [(opened, met)]
            return (opened, met) if lag == 0 and stable else None

        final_opened, final_met = await wait_for(
            metrics_settled, within=60, interval=1.0, what="metrics settled"
        )
        phases["drained"] = time.time() - began
        for task in tasks:
            task.cancel()

        raw = {e.event_id for e in await envelopes_of(kafka, Stream.RAW)}
        routed = {e.event_id for e in await envelopes_of(kafka, Stream.ROUTED)}
        timings = await decision_times(kafka)
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await follower.reader.stop()
        for proc in everyone:
            proc.stop()

    killed_metrics = watch.last_before(procs["metrics"][0].name, faults[-1].kill_at)
    figures = measure(
        load=load,
        envelopes=envelopes,
        raw=raw,
        routed=routed,
        timings=timings,
        faults=faults,
        watch=watch,
        baseline=(started, faults[0].kill_at),
        ended=ended,
    )
    figures["metrics"] = {
        "truth_opened": truth_opened,
        "truth_met": truth_met,
        "final_opened_both_instances": final_opened,
        "final_met_both_instances": final_met,
        "killed_instance_last_scrape_opened": killed_metrics.opened if killed_metrics else 0,
        "killed_instance_last_scrape_met": killed_metrics.met if killed_metrics else 0,
    }
    figures["phases_s"] = {k: round(v, 1) for k, v in phases.items()}
    figures["test_seconds"] = round(time.time() - began, 1)
    report(figures, capsys)

    assert figures["lost"] == {"raw": 0, "routed": 0, "opened": 0, "outcomes": 0}
    assert figures["duplicates"] == {"decision_ids": 0, "outcomes": 0}
    assert figures["accepted_events"] == 3 * len(load.complete) > 0
    # The two shards together count every decision once, the restarted one included (its
    # counters come back from its changelog).
    assert (final_opened, final_met) == (truth_opened, truth_met)


# --------------------------------------------------------------------------- reading back


async def envelopes_of(kafka: KafkaSettings, stream: Stream) -> list[Envelope]:
    return [Envelope.from_bytes(r.value) for r in await read_all(kafka, kafka.topics.name(stream))]


async def decisions(kafka: KafkaSettings) -> list[Envelope]:
    return await envelopes_of(kafka, Stream.DECISIONS)


def met_count(envelopes: Sequence[Envelope]) -> int:
    return sum(1 for e in envelopes if e.event_type == "sla.met")


async def decision_times(kafka: KafkaSettings) -> dict[int, list[float]]:
    """When each partition's decisions were written (record timestamps, seconds), in order."""
    out: dict[int, list[float]] = defaultdict(list)
    for record in await read_all(kafka, kafka.topics.name(Stream.DECISIONS)):
        out[record.partition].append(record.timestamp / 1000)
    return {p: sorted(ts) for p, ts in out.items()}


@dataclass
class Tally:
    """Outcomes per (handoff, clock, cycle): decided minus retracted."""

    outcomes: Counter[tuple[str, str, int]] = field(default_factory=Counter)

    def add(self, envelope: Envelope) -> None:
        data = envelope.data
        key = (envelope.key, str(data.get("clock")), int(data.get("cycle", 0)))
        if envelope.event_type in ("sla.met", "sla.missed"):
            self.outcomes[key] += 1
        elif envelope.event_type == "sla.retracted":
            self.outcomes[key] -= 1


def measure(
    *,
    load: Load,
    envelopes: Sequence[Envelope],
    raw: set[str],
    routed: set[str],
    timings: dict[int, list[float]],
    faults: Sequence[Fault],
    watch: MetricsWatch,
    baseline: tuple[float, float],
    ended: float,
) -> dict[str, Any]:
    """The figures: lost, duplicated, recovery and stalls."""
    ids = Counter(e.event_id for e in envelopes)
    tally = Tally()
    for envelope in envelopes:
        tally.add(envelope)
    opened = {e.key for e in envelopes if e.event_type == "sla.opened"}
    outcomes_missing = sum(
        1
        for h in load.complete
        for clock in ("response", "resolution")
        if tally.outcomes[(h, clock, 1)] < 1
    )
    base = max(longest_gap(ts, *baseline, inside=True)[0] for ts in timings.values())
    significant = max(2 * base, 1.0)
    for i, fault in enumerate(faults):
        fault.window_end = faults[i + 1].kill_at if i + 1 < len(faults) else ended
    per_fault = []
    for fault in faults:
        gaps = {p: longest_gap(ts, fault.kill_at, fault.window_end) for p, ts in timings.items()}
        stalled = [end for length, end in gaps.values() if length > significant]
        row: dict[str, Any] = {
            "fault": fault.what,
            "back_s": round(fault.back_at - fault.kill_at, 1),
            "decisions_flowing_everywhere_after_s": round(
                max(stalled) - fault.kill_at if stalled else 0.0, 1
            ),
            "longest_pause_any_partition_s": round(max(g[0] for g in gaps.values()), 1),
        }
        row["pauses_s"] = {p: round(g[0], 1) for p, g in sorted(gaps.items())}
        if fault.survivors is not None and fault.survivor is not None:
            if fault.what.startswith("metrics"):
                series = watch.series[fault.survivor]
                row["survivor_counters_flat_s"] = round(
                    longest_flat(series, fault.kill_at, fault.window_end), 1
                )
                row["survivor_series"] = [
                    (round(c.at - fault.kill_at, 1), c.opened)
                    for c in series
                    if fault.kill_at <= c.at <= fault.window_end
                ]
            else:
                row["survivor_partitions"] = sorted(fault.survivors)
                row["survivor_longest_pause_s"] = round(
                    max((gaps[p][0] for p in fault.survivors if p in gaps), default=0.0), 1
                )
        refused = [r for r in load.refusals if fault.kill_at <= r[0] <= fault.window_end]
        row["intake_refusals"] = len(refused)
        if refused:
            row["intake_refusing_s"] = round(refused[-1][0] - refused[0][0], 1)
        per_fault.append(row)
    return {
        "rate_handoffs_per_s": RATE,
        "accepted_events": len(load.accepted),
        "handoffs": len(load.complete),
        "lost": {
            "raw": len(load.accepted - raw),
            "routed": len(load.accepted - routed),
            "opened": len(set(load.complete) - opened),
            "outcomes": outcomes_missing,
        },
        "duplicates": {
            "decision_ids": sum(n - 1 for n in ids.values() if n > 1),
            "outcomes": sum(n - 1 for n in tally.outcomes.values() if n > 1),
        },
        "baseline_longest_pause_s": round(base, 2),
        "faults": per_fault,
    }


def report(figures: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    """Print the figures on the terminal (even under capture) and keep them as JSON."""
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2))
    m = figures["metrics"]
    lines = [
        "",
        f"three-broker cluster under faults ({figures['test_seconds']} s, "
        f"{figures['rate_handoffs_per_s']:g} handoffs/s through intake)",
        f"  events accepted {figures['accepted_events']} ({figures['handoffs']} handoffs); "
        f"lost {figures['lost']}; duplicates {figures['duplicates']}",
        f"  metrics handoff_opened_total: truth {m['truth_opened']}, both shards at the end "
        f"{m['final_opened_both_instances']:g}, + killed instance's last scrape "
        f"{m['killed_instance_last_scrape_opened']:g}",
        f"  metrics met outcomes: truth {m['truth_met']}, both shards at the end "
        f"{m['final_met_both_instances']:g}, + killed instance's last scrape "
        f"{m['killed_instance_last_scrape_met']:g}",
        f"  longest pause between decisions of a partition before any fault: "
        f"{figures['baseline_longest_pause_s']} s",
    ]
    for row in figures["faults"]:
        shown = {k: v for k, v in row.items() if k not in ("pauses_s", "survivor_series")}
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in shown.items()))
    lines.append(f"  phases (s from the start): {figures['phases_s']}; figures: {FIGURES}")
    with capsys.disabled():
        print("\n".join(lines))
