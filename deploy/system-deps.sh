#!/usr/bin/env bash
# Debian packages Baton needs on a fresh machine: a JDK 17+ (the Kafka broker) and Maven (to
# fetch the broker's jars from Maven Central). Installed only when missing.
set -euo pipefail

need=()
java_major=$(java -version 2>&1 | sed -E -n 's/.* version "([0-9]+).*/\1/p' | head -1 || true)
if [ -z "${java_major:-}" ] || [ "$java_major" -lt 17 ]; then need+=(openjdk-17-jre-headless); fi
command -v mvn >/dev/null 2>&1 || need+=(maven)
command -v chromium >/dev/null 2>&1 || need+=(chromium)  # tests render the review page headless
command -v curl >/dev/null 2>&1 || need+=(curl)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)

if [ ${#need[@]} -gt 0 ]; then
  echo "[deps] installing: ${need[*]}"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
