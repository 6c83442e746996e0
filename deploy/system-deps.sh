#!/usr/bin/env bash
# Debian packages Baton needs on a fresh machine: a JDK 17+ (the Kafka broker) and Maven (to
# fetch the broker's jars from Maven Central), installed only when missing; and Debian's
# Prometheus and Alertmanager (with promtool and amtool), unpacked into .cache/prometheus.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

need=()
java_major=$(java -version 2>&1 | sed -E -n 's/.* version "([0-9]+).*/\1/p' | head -1 || true)
if [ -z "${java_major:-}" ] || [ "$java_major" -lt 17 ]; then need+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v curl >/dev/null 2>&1 || need+=(curl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
if [ ${#need[@]} -gt 0 ]; then
  echo "[deps] installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Prometheus and Alertmanager: `apt-get download` + `dpkg -x` rather than `apt-get install`, so no
# system daemon starts (the packages' own would take 9090/9093, and 9093 is Kafka's controller)
# and nothing needs root beyond refreshing the package lists. make run, the promtool/amtool
# checks and the end-to-end alert test use these binaries.
PROM_DIR="$ROOT/.cache/prometheus"
PROM_PACKAGES=(prometheus prometheus-alertmanager)
if [ ! -x "$PROM_DIR/usr/bin/prometheus" ] || [ ! -x "$PROM_DIR/usr/bin/prometheus-alertmanager" ]; then
  echo "[deps] fetching Debian's ${PROM_PACKAGES[*]} into .cache/prometheus"
  tmp=$(mktemp -d)
  fetch() { (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "${PROM_PACKAGES[@]}"); }
  if ! fetch 2>/dev/null; then
    $SUDO apt-get update -qq  # a fresh machine has no package lists yet
    fetch
  fi
  mkdir -p "$PROM_DIR"
  for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$PROM_DIR"; done
  rm -rf "$tmp"
  "$PROM_DIR/usr/bin/prometheus" --version 2>&1 | head -1
  "$PROM_DIR/usr/bin/prometheus-alertmanager" --version 2>&1 | head -1
fi
