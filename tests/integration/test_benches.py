"""The sla benchmarks run, at a small scale, against the suite's broker: a benchmark that no
longer runs (an API it builds on changed) fails here, not on the day someone measures. The
figures are not checked -- timing belongs to the benchmarks -- but what they count is: every
handoff written to the changelog is restored, every partition decides again after a kill."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from support import Broker

REPO = Path(__file__).resolve().parents[2]
EXCERPT = REPO / "tests" / "data" / "bpi2013-excerpt.csv"


def run_bench(broker: Broker, *args: str, timeout: float = 300) -> str:
    env = {**os.environ, "BATON_BENCH_BOOTSTRAP": broker.bootstrap}
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / args[0]), *args[1:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    assert done.returncode == 0, f"{args[0]} failed:\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


def test_the_rebuild_benchmark_restores_every_handoff_it_wrote(broker: Broker) -> None:
    out = run_bench(broker, "bench_sla.py", "rebuild", "--n", "3000")
    assert "rebuild: 3,000 changelog records" in out
    assert re.search(r"restored 3,000 handoffs in [\d.]+s", out), out


def test_the_failover_benchmark_sees_every_partition_decide_again(broker: Broker) -> None:
    out = run_bench(broker, "bench_failover.py", "--open", "6000", "--partitions", "3")
    assert "failover: 6,000 open handoffs in the changelog" in out
    assert re.search(r"every partition deciding again after [\d.]+s", out), out
    assert re.search(r"p0 [\d.]+s, p1 [\d.]+s, p2 [\d.]+s\n", out), out


def test_the_history_benchmark_decides_every_event_it_replays(broker: Broker) -> None:
    # The excerpt in the repository: the suite must not depend on the datasets beside it.
    out = run_bench(broker, "bench_replay.py", "--log", str(EXCERPT))
    replayed = re.search(r"replay: ([\d,]+) events", out)
    assert replayed and int(replayed[1].replace(",", "")) > 100, out
    assert re.search(rf"sla decided {replayed[1]} historical events in [\d.]+s", out), out
