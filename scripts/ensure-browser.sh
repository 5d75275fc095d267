#!/usr/bin/env bash
# Debian's Chromium for the browser tests (upload page, artifact screenshots). Installed from the
# distribution's packages when missing and we may (root with apt-get); Playwright's own browser
# download is never used. Without it the browser tests fail and say what to install.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -n "${AUDIAPRO_CHROMIUM:-}" ]; then exit 0; fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser tests (about 30 s)"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is missing: install Debian's chromium package (sudo apt-get install chromium)" >&2
fi
