#!/usr/bin/env bash
# Make sure a Chromium exists for the browser tests (tests/test_browser.py), which drive it with
# Playwright. Installs Debian's package when we can; otherwise says what to do. Never a browser
# download (`playwright install`): the tests use the system's binary.
set -euo pipefail

CHROMIUM="${EXPERTCONNECT_TEST_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Chromium not found: installing Debian's chromium package"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "Chromium not found at $CHROMIUM: install it (Debian: sudo apt-get install chromium), or set EXPERTCONNECT_TEST_CHROMIUM to a Chromium binary" >&2
exit 1
