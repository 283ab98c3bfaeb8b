#!/usr/bin/env bash
# Make sure PostgreSQL server binaries exist for the private cluster (used when
# database.dsn is empty). Installs Debian's package when we can; otherwise says what to do.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then
  exit 0
fi
if [ -n "${EXPERTCONNECT_DATABASE_DSN:-}" ]; then
  exit 0   # an existing server is configured; no local binaries needed
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "PostgreSQL server not found: installing Debian's postgresql package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq postgresql >/dev/null
  exit 0
fi
echo "PostgreSQL server not found: install it (Debian/Ubuntu: sudo apt-get install postgresql), or set database.dsn in config.yaml to an existing server" >&2
exit 1
