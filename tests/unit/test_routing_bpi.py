"""The BPI Challenge 2013 map: 649 teams kept short by default routes, and every handoff of the
real log routable through it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from metrics.domain.catalog import Catalog
from routing.__main__ import bpi_log, main
from routing.adapters.bpi import bpi_map_yaml, handoff_pairs, read_teams
from routing.adapters.mapfile import parse_map_text, read_map_file
from routing.domain.versioning import next_map
from shared.contracts import as_slug
from shared.events import HandoffSubmittedV1
from shared.routes import Router

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HEADER = "SR Number,Change Date+Time,Involved ST,ST Level,SR Latest Impact\n"


def test_teams_become_processes_with_their_level_standard(tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    log.write_text(
        "\ufeff" + HEADER + "1,2010-01-01T10:00:00+01:00,V5 3rd,L3,Low\n"
        "1,2010-01-01T11:00:00+01:00,G97,L1,Low\n"
        "2,2010-01-02T10:00:00+01:00,N52 2nd,L2/L3,High\n",
        encoding="utf-8",
    )
    teams = read_teams(log)
    assert teams == {"V5 3rd": "l3", "G97": "l1", "N52 2nd": "l2"}
    draft = parse_map_text(bpi_map_yaml(teams))
    assert [p.id for p in draft.processes] == ["v5-3rd", "g97", "n52-2nd"]
    assert draft.processes[0].name == "V5 3rd"
    routes = {r.to_process: r for r in draft.routes}
    assert {r.from_process for r in draft.routes} == {"*"}
    assert routes["g97"].standard.calendar.always_open  # first line: 24x7
    assert routes["v5-3rd"].standard.calendar.id == "be-office"
    assert routes["v5-3rd"].standard.targets["P1"].response.total_seconds() == 3600


def test_ids_are_made_the_way_an_importer_makes_them() -> None:
    assert as_slug("V13 2nd 3rd") == "v13-2nd-3rd"
    assert as_slug("  Org line A2 ") == "org-line-a2"


@pytest.mark.skipif(
    not bpi_log().exists(), reason="the BPI Challenge 2013 log is not beside the repo"
)
def test_every_handoff_of_the_bpi_log_is_routed_by_649_default_routes(tmp_path: Path) -> None:
    log = bpi_log()
    out = tmp_path / "bpi.yaml"
    assert main(["generate-bpi", "-o", str(out)]) == 0
    pmap = next_map(read_map_file(out), None, now=NOW, source="bpi").map
    assert len(pmap.processes) == 649 and len(pmap.routes) == 649
    router = Router(pmap)
    pairs = set(handoff_pairs(log))
    assert len(pairs) == 2463
    for supplier, receiver in pairs:
        opening = HandoffSubmittedV1.model_validate(
            {
                "case_id": "c",
                "kind": "incident",
                "from": as_slug(supplier),
                "to": as_slug(receiver),
                "priority": "P3",
            }
        )
        assert router.resolve(opening).to_process == as_slug(receiver)
    # metrics pre-initialises no pair: all 2,463 are implied, labelled when they show up.
    assert Catalog.from_map(pmap).pairs == ()
