#!/usr/bin/env bash
# Debian packages Baton needs on a fresh machine: a JDK 17+ (the Kafka broker) and Maven (to
# fetch the broker's jars from Maven Central), and Debian's Prometheus and Alertmanager (with
# promtool and amtool, for make run and the tests). Installed only when missing.
set -euo pipefail

need=()
java_major=$(java -version 2>&1 | sed -E -n 's/.* version "([0-9]+).*/\1/p' | head -1 || true)
if [ -z "${java_major:-}" ] || [ "$java_major" -lt 17 ]; then need+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # tests render the review page headless
command -v curl >/dev/null 2>&1 || need+=(curl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)

if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
if [ ${#need[@]} -gt 0 ]; then
  echo "[deps] installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Prometheus and Alertmanager (with promtool and amtool): Debian's packages. Their binaries read
# their web assets and Alertmanager's notification templates from /usr/share/prometheus, so a
# `dpkg -x` into .cache is not enough: they are installed, with a policy-rc.d that refuses to
# start the packages' own daemons during the install (they would take 9090 and 9093, Kafka's
# controller port; `make run` starts its own on 9090 and 9094). Recommends are left out (no
# node exporter daemon).
if ! command -v prometheus >/dev/null 2>&1 || ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  echo "[deps] installing Debian's prometheus and prometheus-alertmanager (no daemon started)"
  guard=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\n# deploy/system-deps.sh: no daemon starts during this install\nexit 101\n' | $SUDO tee "$guard" >/dev/null
    $SUDO chmod 755 "$guard"
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    prometheus prometheus-alertmanager >/dev/null
  if [ -n "$guard" ]; then $SUDO rm -f "$guard"; fi
  prometheus --version 2>&1 | head -1
  prometheus-alertmanager --version 2>&1 | head -1
fi
