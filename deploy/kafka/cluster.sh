#!/usr/bin/env bash
# Baton's local three-broker Apache Kafka cluster: three KRaft nodes on loopback, each a broker
# and a controller in one JVM (combined mode), one static controller quorum of the three, and
# the internal topics (consumer offsets, transaction state) replicated 3 times with
# min.insync.replicas 2. Each node is one deploy/kafka/kafka.sh with its own node id, ports and
# data directory, so there is one way to run a Kafka node here.
#
#   ./cluster.sh start          # format (once) and start the three nodes together, wait until all are ready
#   ./cluster.sh stop           # controlled shutdown of every node
#   ./cluster.sh status         # exit 0 when all three run
#   ./cluster.sh clean          # stop + delete the cluster's data
#   ./cluster.sh bootstrap      # print bootstrap.servers for clients (all three nodes)
#   ./cluster.sh kill N         # SIGKILL node N (1..3): a crash, no controlled shutdown
#   ./cluster.sh start-node N   # start node N again (the two others keep the quorum meanwhile)
#   ./cluster.sh stop-node N    # controlled shutdown of node N
#
# Ports: node N takes clients on CLUSTER_BASE_PORT + 2(N-1) and its controller listener on the
# next port: 9111/9112, 9113/9114, 9115/9116 by default (make run's single broker is 9092/9093).
# Data and logs: $CLUSTER_DIR/node-N (default <repo>/.run/cluster-<base port>).
# Baton's own topics get their replication from the services' settings:
#   BATON_KAFKA__REPLICATION_FACTOR=3 BATON_KAFKA__MIN_INSYNC_REPLICAS=2 python -m shared.admin topics
set -euo pipefail

RECIPE_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$RECIPE_DIR/../.." && pwd)"
KAFKA_SH="$RECIPE_DIR/kafka.sh"
CLUSTER_HOST="${CLUSTER_HOST:-127.0.0.1}"
CLUSTER_BASE_PORT="${CLUSTER_BASE_PORT:-9111}"
CLUSTER_DIR="${CLUSTER_DIR:-$REPO_DIR/.run/cluster-$CLUSTER_BASE_PORT}"
NODES=(1 2 3)

log() { echo "[cluster] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

client_port() { echo $(( CLUSTER_BASE_PORT + 2 * ($1 - 1) )); }
controller_port() { echo $(( CLUSTER_BASE_PORT + 2 * ($1 - 1) + 1 )); }

voters() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$n@$CLUSTER_HOST:$(controller_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

bootstrap() {
  local n out=()
  for n in "${NODES[@]}"; do out+=("$CLUSTER_HOST:$(client_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

ID_FILE="$CLUSTER_DIR/cluster.id"
PROPERTIES="$CLUSTER_DIR/cluster.properties"

prepare() {  # once, before any node starts (nodes start concurrently and read both files)
  mkdir -p "$CLUSTER_DIR"
  if [ ! -f "$ID_FILE" ]; then  # one id for the three nodes (Kafka's base64url UUID form)
    python3 - > "$ID_FILE" <<'PY'
import base64, uuid
while True:
    text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not text.startswith("-"):
        print(text)
        break
PY
  fi
  # What the three nodes add to server.properties (then KAFKA_EXTRA_PROPERTIES, if set).
  {
    echo "# ---- three-node cluster (cluster.sh) ----"
    echo "offsets.topic.replication.factor=3"
    echo "transaction.state.log.replication.factor=3"
    echo "transaction.state.log.min.isr=2"
    echo "share.coordinator.state.topic.replication.factor=3"
    echo "share.coordinator.state.topic.min.isr=2"
    echo "default.replication.factor=3"
    echo "min.insync.replicas=2"
    if [ -n "${KAFKA_EXTRA_PROPERTIES:-}" ]; then
      echo ""
      cat "$KAFKA_EXTRA_PROPERTIES"
    fi
  } > "$PROPERTIES.tmp"
  mv "$PROPERTIES.tmp" "$PROPERTIES"
}

node() {  # run kafka.sh for node N: node() N <command>
  local n=$1; shift
  case "$n" in 1|2|3) ;; *) die "node '$n': the cluster's nodes are 1, 2 and 3" ;; esac
  KAFKA_NODE_ID="$n" \
  KAFKA_HOST="$CLUSTER_HOST" \
  KAFKA_PORT="$(client_port "$n")" \
  KAFKA_CONTROLLER_PORT="$(controller_port "$n")" \
  KAFKA_QUORUM=static \
  KAFKA_QUORUM_VOTERS="$(voters)" \
  KAFKA_CLUSTER_ID="$(cat "$ID_FILE" 2>/dev/null || true)" \
  KAFKA_DATA_DIR="$CLUSTER_DIR/node-$n" \
  KAFKA_EXTRA_PROPERTIES="$PROPERTIES" \
    "$KAFKA_SH" "$@"
}

start_all() {
  "$KAFKA_SH" fetch
  prepare
  # Together: a node finishes starting only once the quorum (two of three) elected a leader.
  local n pids=() failed=0
  for n in "${NODES[@]}"; do
    node "$n" start >/dev/null &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || die "a node did not start (logs: $CLUSTER_DIR/node-*/kafka.out)"
  log "ready: bootstrap.servers=$(bootstrap)"
  bootstrap
}

each() {  # run a kafka.sh command on every node, all at once (a node stopped alone after the
  # others would wait for a quorum that is gone)
  local n pids=() rc=0
  for n in "${NODES[@]}"; do node "$n" "$@" & pids+=($!); done
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return "$rc"
}

kill_node() {
  local pid_file="$CLUSTER_DIR/node-$1/kafka.pid"
  [ -f "$pid_file" ] || die "node $1 is not running"
  kill -KILL "$(cat "$pid_file")"
  log "node $1 SIGKILLed (pid $(cat "$pid_file"))"
}

status_all() {
  local n rc=0
  for n in "${NODES[@]}"; do
    printf 'node %s: ' "$n"
    node "$n" status || rc=1
  done
  return "$rc"
}

case "${1:-}" in
  start)      start_all ;;
  stop)       each stop ;;
  status)     status_all ;;
  clean)      each stop; rm -rf "$CLUSTER_DIR"; log "removed $CLUSTER_DIR" ;;
  bootstrap)  bootstrap ;;
  kill)       kill_node "${2:?node number}" ;;
  start-node) prepare; node "${2:?node number}" start >/dev/null; log "node $2 started" ;;
  stop-node)  node "${2:?node number}" stop ;;
  *) echo "usage: $0 {start|stop|status|clean|bootstrap|kill N|start-node N|stop-node N}" >&2; exit 2 ;;
esac
