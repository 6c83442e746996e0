#!/usr/bin/env bash
# `make demo`: Baton on a real log. Generates the BPI Challenge 2013 map for DATASET, (re)starts
# `make run`'s system with it, imports the log with `baton import`, waits until metrics counts
# an outcome for every clock, then shows the latest closed handoffs and the outcome totals.
#   deploy/demo.sh DATASET
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"
DATASET="${1:?usage: deploy/demo.sh DATASET}"
if [ ! -f "$DATASET" ]; then
  echo "make demo: no event log at $DATASET." >&2
  echo "  It is the BPI Challenge 2013 incident log, VINST-new.csv (doi:10.4121/uuid:500573e6-accc-4b0c-9576-aa5468b10cee)." >&2
  echo "  Give its path: make demo DATASET=/path/to/VINST-new.csv (an excerpt: tests/data/bpi2013-excerpt.csv)" >&2
  exit 2
fi
MAP="$ROOT/.run/demo-map.yaml"
mkdir -p "$ROOT/.run"
"$BIN/python" -m routing generate-bpi "$DATASET" -o "$MAP"
echo "[demo] restarting the system with the generated map ($MAP)"
deploy/run.sh stop >/dev/null 2>&1 || true
BATON_MAP="$MAP" deploy/run.sh start
"$BIN/baton" import "$DATASET" --restart
clocks=$(( 2 * $("$BIN/baton" -o json import "$DATASET" --dry-run | "$BIN/python" -c 'import json,sys; print(json.load(sys.stdin)["handoffs"])') ))
totals() {  # outcomes minus retractions, and retractions, summed over metrics' series
  curl -s http://127.0.0.1:8004/metrics | awk '
    /^handoff_target_outcomes_total\{/ {o += $NF} /^handoff_target_retractions_total\{/ {r += $NF}
    END {printf "%d %d\n", o - r, r}'
}
deadline=$(( $(date +%s) + 300 ))
until [ "$(totals | cut -d" " -f1)" -ge "$clocks" ]; do
  if [ "$(date +%s)" -gt "$deadline" ]; then echo "[demo] sla/metrics not caught up after 300 s" >&2; break; fi
  sleep 1
done
"$BIN/baton" closed --limit 15
echo "[demo] clocks decided: $(totals | cut -d" " -f1) of $clocks (retractions: $(totals | cut -d" " -f2))"
curl -s http://127.0.0.1:8004/metrics | awk '
  /^handoff_target_outcomes_total\{/ {
    match($0, /milestone="[a-z]+"/); c = substr($0, RSTART + 11, RLENGTH - 12)
    match($0, /outcome="[a-z]+"/); o = substr($0, RSTART + 9, RLENGTH - 10)
    n[c " " o] += $NF }
  END { for (k in n) printf "  %-20s %d\n", k, n[k] }' | sort
echo "[demo] more: baton closed --outcome missed, baton case <SR Number>, http://127.0.0.1:9090; make stop"
