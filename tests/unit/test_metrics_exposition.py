"""metrics' exposition: the fast families render what client_python would, in both formats,
with exemplars in OpenMetrics; the service stages tallies until their transaction commits."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client import generate_latest as client_text
from prometheus_client.openmetrics.exposition import generate_latest as client_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

import builders as b
from metrics.adapters.exposition import CounterFamily, Exposition, HistogramFamily
from metrics.adapters.instruments import Instruments
from metrics.domain.effects import Effect, Exemplar, Family
from metrics.domain.pairs import PairMemory
from metrics.domain.shards import Shard
from metrics.domain.status import StatusBoard
from metrics.domain.tally import PairTally, changelog_key
from metrics.handlers import MetricsService
from metrics.main import create_app
from metrics.settings import Settings
from shared.clock import FakeClock
from shared.kafka import ProcessedCounter, Rejected
from shared.settings import KafkaSettings

disable_created_metrics()  # type: ignore[no-untyped-call]  # as the service does

PAIRS = [("sales", "warehouse"), ("hr", "payroll")]
PROCESS_MAP = b.process_map(PAIRS, extra_processes=["it-l1"])


def samples(text: str, openmetrics: bool) -> dict[tuple[str, frozenset[tuple[str, str]]], Sample]:
    parse = parse_om if openmetrics else parse_text
    return {
        (s.name, frozenset(s.labels.items())): s for family in parse(text) for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    """A sample's value in Prometheus text format, None when absent."""
    found = samples(text, False).get((name, frozenset(labels.items())))
    return None if found is None else float(found.value)


def om_value(text: str, name: str, **labels: str) -> float | None:
    """A sample's value in OpenMetrics format, None when absent."""
    found = samples(text, True).get((name, frozenset(labels.items())))
    return None if found is None else float(found.value)


def filled_instruments(pairs: int = 40) -> Instruments:
    """Every family filled for `pairs` pairs, through committed tallies as the service does."""
    instruments = Instruments()
    for i in range(pairs):
        pair = ("sales", "warehouse") if i == 0 else (f"s{i}", f"c{i}")
        tally = PairTally(pair)
        clock = (*pair, "P1", "response")
        at = (*pair, "response")
        for effect in (
            Effect(Family.OPENED, (*pair, "P1")),
            Effect(Family.OUTCOMES, (*clock, "missed")),
            Effect(Family.RETRACTIONS, (*clock, "missed")),
            Effect(Family.DURATION, at, 42.0),
            Effect(Family.DURATION, at, 7200.0),
            Effect(Family.USAGE, at, 0.8, Exemplar("h-1", 1_772_442_000.0)),
            Effect(Family.USAGE, at, 1.0, Exemplar("h-2", 1_772_442_001.5)),
            Effect(Family.REWORK, pair),
            Effect(Family.SATISFACTION, pair, 5.0),
        ):
            tally.apply(effect)
            instruments.exemplify([effect])
        instruments.load(tally)
    return instruments


class _Families(Collector):
    def __init__(self, instruments: Instruments) -> None:
        self._instruments = instruments

    def collect(self):  # type: ignore[no-untyped-def]
        for family in self._instruments.families:
            yield from family.collect()


@pytest.mark.parametrize("openmetrics", [False, True])
def test_fast_families_render_exactly_what_client_python_renders(openmetrics: bool) -> None:
    instruments = filled_instruments()
    ours = Exposition(CollectorRegistry(), [instruments.render]).render(openmetrics).decode()
    registry = CollectorRegistry()
    registry.register(_Families(instruments))
    theirs = (client_openmetrics if openmetrics else client_text)(registry).decode()
    assert samples(ours, openmetrics) == samples(theirs, openmetrics)
    assert len(samples(ours, openmetrics)) > 500
    if openmetrics:
        assert ours.endswith("# EOF\n") and ours.count("# EOF") == 1


def test_exemplars_carry_the_handoff_id_in_openmetrics_only() -> None:
    instruments = filled_instruments()
    exposition = Exposition(CollectorRegistry(), [instruments.render])
    om = exposition.render(openmetrics=True).decode()
    bucket = samples(om, True)[
        (
            "handoff_target_usage_ratio_bucket",
            frozenset(
                {"from_team": "sales", "to_team": "warehouse",
                 "milestone": "response", "le": "1.0"}.items()
            ),
        )
    ]  # fmt: skip
    assert bucket.value == 2
    assert bucket.exemplar is not None
    assert bucket.exemplar.labels == {"handoff_id": "h-2"}
    assert bucket.exemplar.value == 1.0
    assert bucket.exemplar.timestamp is not None
    assert float(bucket.exemplar.timestamp) == 1_772_442_001.5
    assert '# {handoff_id="h-1"} 0.8 1772442000.0' in om
    assert "handoff_id" not in exposition.render(openmetrics=False).decode()


def test_counters_are_named_for_each_format_and_no_created_series_appear() -> None:
    family = CounterFamily("handoff_rework", "Rework.", ("from_team", "to_team"))
    family.inc(("a", "b"))
    family.inc(("a", "b"), 2)
    text = b"".join(family.render(False)).decode()
    om = b"".join(family.render(True)).decode()
    assert "# TYPE handoff_rework_total counter" in text
    assert "# TYPE handoff_rework counter" in om
    assert 'handoff_rework_total{from_team="a",to_team="b"} 3.0' in text
    assert "_created" not in text + om


def test_a_changed_label_set_is_rerendered_and_the_others_reused() -> None:
    family = HistogramFamily("h_seconds", "H.", ("k",), (1.0, 2.0))
    for i in range(200):
        family.observe((f"k{i}",), 0.5)
    first = b"".join(family.render(False)).decode()
    family.observe(("k150",), 1.5)
    second = b"".join(family.render(False)).decode()
    assert value(first, "h_seconds_bucket", k="k150", le="2.0") == 1
    assert value(second, "h_seconds_bucket", k="k150", le="1.0") == 1
    assert value(second, "h_seconds_bucket", k="k150", le="2.0") == 2
    assert value(second, "h_seconds_sum", k="k150") == 2.0
    assert value(second, "h_seconds_count", k="k149") == 1


def test_label_values_and_help_are_escaped() -> None:
    family = CounterFamily("x", 'Says "hi"\\n', ("k",))
    family.inc(('a"b\\c\nd',))
    for openmetrics in (False, True):
        text = Exposition(CollectorRegistry(), [family.render]).render(openmetrics).decode()
        name = "x_total"
        read = om_value if openmetrics else value
        assert read(text, name, k='a"b\\c\nd') == 1


# --------------------------------------------------------------------------- service


def service(shard: Shard | None = None) -> tuple[MetricsService, CollectorRegistry]:
    registry = CollectorRegistry()
    svc = MetricsService(
        Instruments(),
        StatusBoard(),
        PairMemory(100),
        ProcessedCounter(registry),
        shard=shard or Shard(),
        changelog_topic="metrics.state.v1",
        map_topic="routing.processmap.v1",
        status_topic="sla.status.v1",
    )
    svc.on_process_map(b"current", b.map_bytes(PROCESS_MAP))
    return svc, registry


P0, P1 = ("sla.decisions.v1", 0), ("sla.decisions.v1", 1)
MET = ("sales", "warehouse", "P3", "resolution", "met")
MISSED = ("sales", "warehouse", "P3", "resolution", "missed")


def test_tallies_are_exposed_only_once_their_transaction_commits() -> None:
    svc, _ = service()
    svc.handle(b.decision("met", "h1", "sales", "warehouse"), P0)
    svc.handle(b.decision("met", "h2", "sales", "warehouse"), P1)
    assert svc.instruments.outcomes.value(MET) is None
    records = svc.prepare()
    assert [(r[0], r[2]) for r in records] == [
        ("metrics.state.v1", changelog_key("0-of-1", ("sales", "warehouse")))
    ]  # one changelog record per changed pair, whatever the number of events
    svc.committed()
    assert svc.instruments.outcomes.value(MET) == 2
    assert svc.instruments.outcomes.value(MISSED) == 0  # a decided clock shows both outcomes
    assert svc.prepare() == []  # nothing staged any more


def test_an_aborted_transaction_exposes_nothing_and_its_events_count_when_replayed() -> None:
    svc, _ = service()
    event = b.decision("met", "h1", "sales", "warehouse")
    svc.handle(event, P0)
    svc.prepare()
    svc.aborted()
    assert svc.instruments.outcomes.value(MET) is None
    svc.handle(event, P0)  # the rewound fetch
    svc.prepare()
    svc.committed()
    assert svc.instruments.outcomes.value(MET) == 1


def test_a_restart_restores_the_committed_totals_and_continues_them() -> None:
    first, _ = service()
    for i in range(3):
        first.handle(b.decision("met", f"h{i}", "sales", "warehouse"), P0)
    changelog = {key: value for _, value, key, _, _ in first.prepare()}
    first.committed()
    second, _ = service()
    second.restore(changelog)
    assert second.instruments.outcomes.value(MET) == 3
    second.handle(b.decision("met", "h9", "sales", "warehouse"), P0)
    second.prepare()
    second.committed()
    assert second.instruments.outcomes.value(MET) == 4  # continued, not reset


def test_shards_expose_disjoint_pairs_and_only_the_owner_dead_letters() -> None:
    shards = [service(Shard(i, 2))[0] for i in range(2)]
    events = [b.decision("met", f"h{i}", *pair) for i, pair in enumerate(PAIRS * 3)]
    for svc in shards:
        for event in events:
            svc.handle(event, P0)
        svc.prepare()
        svc.committed()
    exposed = [set(svc.tallies) for svc in shards]
    assert exposed[0].isdisjoint(exposed[1])
    assert exposed[0] | exposed[1] == set(PAIRS)
    rejected = 0
    for svc in shards:
        try:
            svc.handle(b.decision("met", "hx", "sales", "ghost"), P0)
        except Rejected:
            rejected += 1
    assert rejected == 1


def test_an_unknown_process_is_rejected_as_invalid_and_never_becomes_a_label() -> None:
    svc, _ = service()
    with pytest.raises(Rejected) as caught:
        svc.handle(b.decision("met", "h1", "sales", "ghost"), P0)
    assert caught.value.code == "unknown-process"
    with pytest.raises(Rejected) as caught:
        svc.handle(b.rejected("h-never-seen"), P0)
    assert caught.value.code == "unknown-pair"
    svc.prepare()
    svc.committed()
    text = b"".join(svc.instruments.render(False)).decode()
    assert "ghost" not in text


def test_rework_uses_the_pair_of_the_submission_or_of_the_status_table() -> None:
    svc, _ = service()
    routed = ("handoff.routed.v1", 0)
    svc.handle(b.submitted("h1", "sales", "warehouse"), routed)
    svc.handle(b.rejected("h1"), routed)
    svc.on_status(b"h2", b.status_bytes(b.status("hr", "payroll")))
    svc.handle(b.rejected("h2"), routed)
    svc.handle(b.rated("h2", 3), routed)
    svc.prepare()
    svc.committed()
    assert svc.instruments.rework.value(("sales", "warehouse")) == 1
    assert svc.instruments.rework.value(("hr", "payroll")) == 1
    assert svc.instruments.satisfaction.snapshot(("hr", "payroll")) == ([0, 1, 1, 1], 3.0)


def test_a_process_map_creates_no_series_and_bad_records_count_invalid() -> None:
    svc, registry = service()
    ins = svc.instruments
    assert all(len(family) == 0 for family in ins.families)  # series come with what occurs

    svc.on_process_map(b"current", b'{"version": "nope"}')
    svc.on_status(b"h9", b.status_bytes(b.status("hr", "payroll")))
    svc.on_status(b"h9", b'{"broken": true}')
    assert svc.catalog.version == 1
    assert svc.board.pair_of("h9") is None  # an unreadable row is dropped, not kept stale
    text = client_text(registry).decode()
    assert value(text, "handoff_events_processed_total", topic="routing.processmap.v1",
                 event_type="processmap", result="invalid") == 1  # fmt: skip
    assert value(text, "handoff_events_processed_total", topic="sla.status.v1",
                 event_type="sla.status", result="invalid") == 1  # fmt: skip


# --------------------------------------------------------------------------- the app


async def test_metrics_route_negotiates_format_and_computes_state_at_the_clocks_now() -> None:
    clock = FakeClock(b.T0)
    app = create_app(
        Settings(kafka=KafkaSettings(topic_prefix="unit."), api_keys=b.ADMIN_KEYS), clock
    )
    svc: MetricsService = app.state.service
    svc.on_process_map(b"current", b.map_bytes(PROCESS_MAP))
    deadline = b.T0 + timedelta(hours=1)
    row = b.status("sales", "warehouse", priority="P2",
                   clocks=[("resolution", "running", None, deadline)])  # fmt: skip
    svc.on_status(b"h1", b.status_bytes(row))
    labels = {"from_team": "sales", "to_team": "warehouse", "priority": "P2"}
    clock_labels = {**labels, "milestone": "resolution"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://metrics", headers=b.AUTH
    ) as client:
        text = (await client.get("/metrics")).text
        assert value(text, "handoff_open_items", **labels) == 1
        assert value(text, "handoff_overdue_items", **clock_labels) is None  # only while due
        assert value(text, "handoff_target_seconds", **{**clock_labels, "priority": "P1"}) is None
        assert value(text, "handoff_oldest_overdue_deadline_timestamp_seconds",
                     **clock_labels) is None  # fmt: skip
        assert value(text, "handoff_target_seconds", **clock_labels) == 8 * 3600
        assert value(text, "handoff_slo_objective_ratio", from_team="sales",
                     to_team="warehouse", milestone="resolution") == 0.95  # fmt: skip

        clock.advance(timedelta(hours=2))
        response = await client.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
        assert response.headers["content-type"].startswith("application/openmetrics-text")
        om = response.text
        assert om_value(om, "handoff_overdue_items", **clock_labels) == 1
        oldest = om_value(om, "handoff_oldest_overdue_deadline_timestamp_seconds", **clock_labels)
        assert oldest == deadline.timestamp()

        ready = await client.get("/health/ready")
        assert ready.status_code == 503  # no Kafka in a unit test: tables never caught up
        assert (await client.get("/health/live")).status_code == 200
        assert "/metrics" in (await client.get("/openapi.json")).json()["paths"]
