#!/usr/bin/env bash
# Start / stop / show Baton on this machine: the local Kafka broker, the four services, and
# Prometheus (127.0.0.1:9090) + Alertmanager (127.0.0.1:9094) loaded with the generated rules.
#   deploy/run.sh start | stop | status | reload-map
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

RUN="$ROOT/.run"
LOGS="$RUN/logs"
BIN="$ROOT/.venv/bin"
KAFKA_PORT="${KAFKA_PORT:-9092}"
BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
DEV_KEY="${BATON_DEV_KEY:-baton-dev-key-not-for-production}"
# The process map routing serves: deploy/process-map.yaml, or BATON_MAP (make demo's BPI map).
MAP_FILE="${BATON_MAP:-$ROOT/deploy/process-map.yaml}"
SERVICES=(intake:8001 routing:8002 sla:8003 metrics:8004)
# Debian's binaries (deploy/system-deps.sh). Alertmanager's web port is 9094 (its default 9093
# is Kafka's controller) and its cluster port is off (a single instance).
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-9094}"
OBSERVERS=(prometheus:$PROMETHEUS_PORT alertmanager:$ALERTMANAGER_PORT)

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

env_for() {  # the environment of one service: its prefix, Kafka, and what make run sets up
  local prefix
  prefix="$(echo "$1" | tr '[:lower:]' '[:upper:]')_"
  echo "${prefix}KAFKA__BOOTSTRAP_SERVERS=$BOOTSTRAP ${prefix}PORT=$2"
  # Every service takes the same development key (every scope, every process).
  echo "${prefix}API_KEYS=[{\"name\":\"dev\",\"key\":\"$DEV_KEY\",\"processes\":[\"*\"],\"admin\":true}]"
  case "$1" in
    routing)
      echo "ROUTING_PROCESS_MAP=$MAP_FILE"
      echo "ROUTING_MAP_REVISION=$(map_revision) ROUTING_MAP_AUTHOR=$(map_author)" ;;
  esac
}

map_revision() {  # the git commit of the map file, +edited when it has uncommitted changes
  local rev
  rev="$(git -C "$ROOT" log -1 --format=%h -- deploy/process-map.yaml 2>/dev/null || true)"
  if ! git -C "$ROOT" diff --quiet HEAD -- deploy/process-map.yaml 2>/dev/null; then rev="${rev:-none}+edited"; fi
  echo "${rev:-unknown}"
}

map_author() { git -C "$ROOT" config user.email 2>/dev/null || echo "${USER:-unknown}"; }

reload_map() {  # check deploy/process-map.yaml, then put it in force without a restart
  "$BIN/python" -m routing check "$MAP_FILE" || exit 1
  curl -sS --fail-with-body -X POST -G "http://127.0.0.1:8002/v1/map/reload" \
    --data-urlencode "revision=$(map_revision)" --data-urlencode "author=$(map_author)" \
    -H "Authorization: Bearer $DEV_KEY"
  echo
}

wait_ready() {
  local name=$1 port=$2 path=${3:-/health/ready} deadline=$(( $(date +%s) + 90 ))
  until curl -sf "http://127.0.0.1:$port$path" >/dev/null 2>&1; do
    if ! alive "$name"; then echo "[run] $name exited; its log:" >&2; tail -n 30 "$LOGS/$name.log" >&2; exit 1; fi
    if [ "$(date +%s)" -gt "$deadline" ]; then echo "[run] $name not ready after 90s; see $LOGS/$name.log" >&2; exit 1; fi
    sleep 0.5
  done
}

start() {
  mkdir -p "$LOGS"
  if ! KAFKA_PORT="$KAFKA_PORT" deploy/kafka/kafka.sh start >"$LOGS/kafka-start.log" 2>&1; then
    tail -n 40 "$LOGS/kafka-start.log" >&2; exit 1
  fi
  echo "[run] Kafka 127.0.0.1:$KAFKA_PORT; topics:"
  BATON_KAFKA__BOOTSTRAP_SERVERS="$BOOTSTRAP" "$BIN/python" -m shared.admin topics
  for entry in "${SERVICES[@]}"; do
    local name=${entry%%:*} port=${entry##*:}
    if alive "$name"; then echo "[run] $name already running"; continue; fi
    # shellcheck disable=SC2046
    env $(env_for "$name" "$port") nohup "$BIN/uvicorn" --factory "$name.main:create_app" \
      --host 127.0.0.1 --port "$port" --log-level warning --no-access-log \
      >"$LOGS/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
  done
  for entry in "${SERVICES[@]}"; do wait_ready "${entry%%:*}" "${entry##*:}"; done
  start_observers
  cat <<MSG

Baton is running.
  intake   http://127.0.0.1:8001/docs   (POST handoffs and events; API key below)
  routing  http://127.0.0.1:8002/docs   (the process map: deploy/process-map.yaml)
  sla      http://127.0.0.1:8003/docs   (handoff and case status)
  metrics  http://127.0.0.1:8004/metrics
  Prometheus    http://127.0.0.1:$PROMETHEUS_PORT/alerts   (rules: deploy/prometheus/rules, \`make ops\`)
  Alertmanager  http://127.0.0.1:$ALERTMANAGER_PORT/#/alerts   (routes: deploy/alertmanager/alertmanager.yml)
  Kafka    $BOOTSTRAP                 logs: .run/logs/   stop: make stop

Try it (development API key: $DEV_KEY):
  curl -s -X POST http://127.0.0.1:8001/v1/handoffs \\
    -H 'Authorization: Bearer $DEV_KEY' -H 'Content-Type: application/json' \\
    -H 'Idempotency-Key: demo-1' \\
    -d '{"handoff_id": "demo-1", "case_id": "INC-1001", "kind": "incident", "from": "service-desk", "priority": "P2"}'
  curl -s -H 'Authorization: Bearer $DEV_KEY' http://127.0.0.1:8003/v1/handoffs/demo-1
  curl -s http://127.0.0.1:8004/metrics | grep 'handoff_opened_total{'
MSG
}

start_observers() {  # Prometheus and Alertmanager on loopback, data under .run/
  mkdir -p "$RUN/prometheus" "$RUN/alertmanager"
  if ! alive alertmanager; then
    nohup prometheus-alertmanager \
      --config.file="$ROOT/deploy/alertmanager/alertmanager.yml" \
      --storage.path="$RUN/alertmanager" \
      --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
      --cluster.listen-address= \
      >"$LOGS/alertmanager.log" 2>&1 &
    echo $! >"$RUN/alertmanager.pid"
  fi
  if ! alive prometheus; then
    nohup prometheus \
      --config.file="$ROOT/deploy/prometheus/prometheus.yml" \
      --storage.tsdb.path="$RUN/prometheus" \
      --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" \
      --enable-feature=exemplar-storage \
      --web.enable-lifecycle \
      >"$LOGS/prometheus.log" 2>&1 &
    echo $! >"$RUN/prometheus.pid"
  fi
  wait_ready alertmanager "$ALERTMANAGER_PORT" /-/ready
  wait_ready prometheus "$PROMETHEUS_PORT" /-/ready
}

stop() {
  for entry in "${OBSERVERS[@]}" "${SERVICES[@]}"; do
    local name=${entry%%:*}
    if alive "$name"; then
      kill -TERM "$(cat "$RUN/$name.pid")" 2>/dev/null || true
      for _ in $(seq 1 40); do alive "$name" || break; sleep 0.25; done
      alive "$name" && kill -KILL "$(cat "$RUN/$name.pid")" 2>/dev/null || true
      echo "[run] stopped $name"
    fi
    rm -f "$RUN/$name.pid"
  done
  KAFKA_PORT="$KAFKA_PORT" deploy/kafka/kafka.sh stop
}

status() {
  for entry in "${SERVICES[@]}" "${OBSERVERS[@]}"; do
    local name=${entry%%:*} port=${entry##*:} path=/health/ready
    case "$name" in prometheus|alertmanager) path=/-/ready ;; esac
    if alive "$name"; then
      ready=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port$path" || true)
      echo "$name: running (pid $(cat "$RUN/$name.pid"), port $port, ready=$([ "$ready" = 200 ] && echo yes || echo no))"
    else
      echo "$name: stopped"
    fi
  done
  KAFKA_PORT="$KAFKA_PORT" deploy/kafka/kafka.sh status || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  reload-map) reload_map ;;
  *) echo "usage: $0 start|stop|status|reload-map" >&2; exit 2 ;;
esac
