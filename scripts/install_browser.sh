#!/usr/bin/env bash
# Install headless Chromium (Debian package `chromium`) for the browser tests
# (tests/test_browser.py, pytest marker `browser`).
#
# Idempotent: exits 0 at once when /usr/bin/chromium is already there.  Runs
# `apt-get update` only when apt does not know the package yet.  Needs root
# (or passwordless sudo).  Playwright's own `playwright install` downloads a
# browser build from outside the package registries and is not used.
#
# Usage: bash scripts/install_browser.sh
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

version() {
    # `chromium --version` may print a warning about the sandbox; keep the version line.
    "$CHROMIUM" --version 2>/dev/null | head -n 1 || true
}

if [ -x "$CHROMIUM" ]; then
    echo "chromium already installed: $(version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_browser.sh: need root (or sudo) to apt-get install chromium" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
candidate=$(apt-cache policy chromium 2>/dev/null | awk '/Candidate:/ {print $2}')
if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    $SUDO apt-get update -qq
fi
$SUDO apt-get install -y -qq chromium >/dev/null

if [ ! -x "$CHROMIUM" ]; then
    echo "install_browser.sh: apt-get installed chromium but $CHROMIUM is missing" >&2
    exit 1
fi
echo "chromium installed: $(version)"
