#!/usr/bin/env bash
# `make bench`: every benchmark, printing its figures. Starts one broker for them (port 19492).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
export KAFKA_PORT=19492 KAFKA_CONTROLLER_PORT=19493 KAFKA_DATA_DIR="$ROOT/.run/kafka-bench-19492"
deploy/kafka/kafka.sh clean >/dev/null 2>&1 || true
deploy/kafka/kafka.sh start >/dev/null 2>&1
trap 'deploy/kafka/kafka.sh clean >/dev/null 2>&1 || true' EXIT
export BATON_BENCH_BOOTSTRAP="127.0.0.1:19492"
quiet() { grep -v -e "Coordinator" -e "retrying" -e "^$" || true; }
command -v wrk >/dev/null 2>&1 || {  # a C load generator, so intake's figure is intake's
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk) >/dev/null 2>&1 \
    || echo "(wrk not installable: the intake benchmark is skipped)"
}

echo "== sla: memory per open handoff"; "$PY" bench/bench_sla.py memory --n "${BENCH_OPEN:-1000000}" 2>&1 | quiet
echo "== sla: state rebuild";           "$PY" bench/bench_sla.py rebuild --n "${BENCH_OPEN:-1000000}" 2>&1 | quiet
echo "== sla: throughput";              "$PY" bench/bench_sla.py throughput --n 10000 2>&1 | quiet
echo "== sla: breach detection";        "$PY" bench/bench_sla.py breach --n 5000 2>&1 | quiet
echo "== sla: history (BPI 2013 replay)"; "$PY" bench/bench_replay.py 2>&1 | quiet
echo "== sla: one of three instances killed"; "$PY" bench/bench_failover.py --open "${BENCH_FAILOVER_OPEN:-2000000}" 2>&1 | quiet
echo "== routing: process maps";        "$PY" bench/bench_map.py 2>&1 | quiet
echo "== metrics: scrape";              "$PY" bench/bench_scrape.py 2>&1 | quiet
echo "== ops files for 2,500 pairs";   "$PY" bench/bench_ops.py 2>&1 | quiet
echo "== intake against a hand-written peer"; "$PY" bench/bench_intake.py 2>&1 | quiet
echo "== end to end";                   "$PY" bench/bench_flow.py 2>&1 | quiet
echo "== baton import of the BPI 2013 log"; "$PY" bench/bench_import.py 2>&1 | quiet
