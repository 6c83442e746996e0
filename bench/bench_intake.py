"""intake against the peer an integrator would write instead, in the same run.

    .venv/bin/python bench/bench_intake.py

Baton's intake (its own process, the example map published, one `"*"` key) and the peer
(bench/peer_intake.py: FastAPI + pydantic + aiokafka, acks=all, idempotent producer, 202 after
the acks) are driven by the same load generator (wrk, a C program, so the figures are the
services') against the same broker, one after the other, alternating, BENCH_RUNS times each.
Prints events/s for one event per request and for batches of 500 (best run), Baton's ratio to
the peer (SPEC section 6: must >= 0.8x one event and >= 0.7x batch; batches >= 20,000
events/s), and the CPU time each service's process spent per event -- the steadier figure on a
machine other work shares.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests")]

import httpx  # noqa: E402

from builders import T0, map_bytes  # noqa: E402
from routing.adapters.mapfile import read_map_file  # noqa: E402
from routing.domain.versioning import next_map  # noqa: E402
from routing.settings import DEFAULT_MAP  # noqa: E402
from shared.kafka import Publisher, ensure_topics  # noqa: E402
from shared.topics import Stream, TopicSpec  # noqa: E402
from support import Broker, ServiceProcess, free_port, fresh_settings, service_env  # noqa: E402

KEY = "bench-key-0123456789abcdef"
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))

SINGLE = """
counter = 0
request = function()
  counter = counter + 1
  local id = "w" .. counter .. "-" .. math.random(1, 1000000000)
  local body = '{"type":"accepted","event_id":"' .. id .. '"}'
  local headers = {["Authorization"] = "Bearer KEY", ["Content-Type"] = "application/json"}
  return wrk.format("POST", "/v1/handoffs/h" .. counter .. "/events", headers, body)
end
"""

BATCH = """
counter = 0
request = function()
  counter = counter + 1
  local p = math.random(1, 1000000000) .. "-" .. counter
  local parts = {}
  for i = 1, SIZE do
    local id = p .. "-" .. i
    parts[i] = '{"handoff_id":"b' .. id .. '","type":"accepted","event_id":"e' .. id .. '"}'
  end
  local body = '{"events":[' .. table.concat(parts, ",") .. ']}'
  local headers = {["Authorization"] = "Bearer KEY", ["Content-Type"] = "application/json"}
  return wrk.format("POST", "/v1/events", headers, body)
end
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(
    url: str, script: str, connections: int, per_request: int, pid: int
) -> tuple[float, float, str]:
    """(events/s, CPU microseconds per event in the service's process, non-2xx line)."""
    before = cpu_seconds(pid)
    rate, bad = wrk(url, script, connections, per_request)
    used = cpu_seconds(pid) - before
    return rate, used / (rate * SECONDS) * 1e6, bad


def wrk(url: str, script: str, connections: int, per_request: int) -> tuple[float, str]:
    """events/s driven by wrk, and the non-2xx line if any."""
    path = REPO / ".run" / f"bench-intake-{per_request}.lua"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script.replace("KEY", KEY).replace("SIZE", str(per_request)))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{SECONDS}s", "-s", str(path), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    bad = next((line.strip() for line in out.splitlines() if "Non-2xx" in line), "")
    requests = float(next(line for line in out.splitlines() if "Requests/sec" in line).split()[-1])
    return requests * per_request, bad


async def publish_map(kafka) -> None:  # type: ignore[no-untyped-def]
    pmap = next_map(read_map_file(DEFAULT_MAP), None, now=T0, source="bench").map
    publisher = Publisher(kafka, client_id="bench-map")
    await publisher.start(wait=True)
    topic = kafka.topics.name(Stream.PROCESS_MAP)
    await publisher.write([(topic, map_bytes(pmap), b"current", [], None)])
    await publisher.stop()


async def wait_http(url: str, path: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=2) as client:
        for _ in range(300):
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{url}{path} never answered 200")


async def main() -> None:
    if shutil.which("wrk") is None:
        print("wrk is not installed (deploy/bench.sh installs it): intake benchmark skipped")
        return
    bootstrap = os.environ.get("BATON_BENCH_BOOTSTRAP")
    broker = None
    if bootstrap is None:
        broker = Broker(19492, "bench")
        broker.clean()
        broker.start()
        bootstrap = broker.bootstrap
    kafka = fresh_settings(bootstrap, partitions=6)
    await ensure_topics(kafka)
    await publish_map(kafka)
    keys = f'[{{"name": "bench", "key": "{KEY}", "processes": ["*"]}}]'
    intake = ServiceProcess(
        "intake.main",
        {**service_env("INTAKE_", kafka), "INTAKE_API_KEYS": keys, "INTAKE_LOG_LEVEL": "WARNING"},
        "bench-intake",
    )
    peer_port = free_port()
    peer_env = {
        **os.environ,
        "PEER_BOOTSTRAP": bootstrap,
        "PEER_TOPIC": kafka.topics.name(Stream.RAW) + ".peer",
    }
    await ensure_topics(kafka, [TopicSpec(peer_env["PEER_TOPIC"], kafka.partitions)])
    peer = subprocess.Popen(  # noqa: ASYNC220 (a server process, started once)
        [sys.executable, str(REPO / "bench" / "peer_intake.py"), str(peer_port)], env=peer_env
    )
    intake.start()
    try:
        await intake.ready()
        await wait_http(f"http://127.0.0.1:{peer_port}", "/health")
        baton_url, peer_url = intake.url, f"http://127.0.0.1:{peer_port}"
        assert intake.proc is not None
        baton_pid = intake.proc.pid
        print(
            f"intake vs. a hand-written FastAPI + aiokafka peer, wrk, {SECONDS} s per run, "
            f"{os.cpu_count()} cores, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        )
        for label, script, connections, size in (
            ("one event per request (32 connections)", SINGLE, 32, 1),
            ("batches of 500 events (4 connections)", BATCH, 4, 500),
        ):
            wrk(baton_url, script, connections, size)  # warm-up, discarded
            wrk(peer_url, script, connections, size)
            ours: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            for _ in range(RUNS):
                rate, cpu, bad = measured(baton_url, script, connections, size, baton_pid)
                ours.append((rate, cpu))
                if bad:
                    print(f"  baton: {bad}")
                rate, cpu, bad = measured(peer_url, script, connections, size, peer.pid)
                theirs.append((rate, cpu))
                if bad:
                    print(f"  peer: {bad}")
            b, p = max(r for r, _ in ours), max(r for r, _ in theirs)
            b_cpu, p_cpu = min(c for _, c in ours), min(c for _, c in theirs)
            print(
                f"{label}: baton {b:,.0f} events/s, peer {p:,.0f} events/s, ratio {b / p:.2f}x; "
                f"CPU per event baton {b_cpu:.0f} us, peer {p_cpu:.0f} us "
                f"(peer/baton {p_cpu / b_cpu:.2f}x)\n"
                f"    runs: baton {', '.join(f'{r:,.0f}' for r, _ in ours)}; "
                f"peer {', '.join(f'{r:,.0f}' for r, _ in theirs)}"
            )
    finally:
        intake.stop()
        peer.terminate()
        peer.wait(timeout=30)
        if broker is not None:
            broker.clean()


if __name__ == "__main__":
    asyncio.run(main())
