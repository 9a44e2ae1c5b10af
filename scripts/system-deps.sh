#!/usr/bin/env bash
# Debian packages the tests need: Chromium (browser tests), PostgreSQL and
# Redis (store and scale-out tests), haproxy (make run-cluster and its fault tests). Installs only what is missing; needs root
# (CI and these machines run as root). Nothing is downloaded at test time.
set -euo pipefail

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing system packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing system packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The Debian postgresql, redis-server and haproxy packages start a service each; the tests and
# make run-cluster run their own, on loopback.
if command -v service >/dev/null 2>&1; then
  for name in postgresql redis-server haproxy; do service "$name" stop >/dev/null 2>&1 || true; done
fi
