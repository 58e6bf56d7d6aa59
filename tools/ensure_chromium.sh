#!/usr/bin/env bash
# Make sure a Chromium exists for the browser tests (tests/browser).
# Debian's package when running as root on Debian; otherwise Playwright's own download.
set -euo pipefail
if [ -n "${LOOPLAB_CHROMIUM:-}" ] && [ -x "${LOOPLAB_CHROMIUM}" ]; then exit 0; fi
for candidate in /usr/bin/chromium /usr/bin/chromium-browser /usr/bin/google-chrome; do
  if [ -x "$candidate" ]; then exit 0; fi
done
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ -f /etc/debian_version ]; then
  echo "Installing Debian's chromium for the browser tests..."
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
if .venv/bin/python -m playwright install chromium; then exit 0; fi
cat >&2 <<'MSG'
The browser tests need Chromium, and it could not be installed here.
Install one of: Debian/Ubuntu `sudo apt-get install chromium`, or `.venv/bin/python -m playwright install chromium`,
or point LOOPLAB_CHROMIUM at a Chromium/Chrome binary. Then run `make test` again.
MSG
exit 1
