#!/usr/bin/env bash
# Install headless Chromium (Debian package `chromium`) for the browser tests
# (tests/test_browser.py, pytest marker `browser`), and a Chinese font
# (`fonts-noto-cjk`) so that screenshots and overview PNGs show 社区/网格 names
# instead of empty boxes.
#
# Idempotent: does nothing when /usr/bin/chromium and a font with Chinese glyphs
# (`fc-list :lang=zh`) are already there.  Runs `apt-get update` only when apt does
# not know the packages yet.  Needs root (or passwordless sudo).  Playwright's own
# `playwright install` downloads a browser build from outside the package registries
# and is not used.  Set GRIDKIT_SKIP_CJK_FONT=1 to leave the font out (~56 MB).
#
# Usage: bash scripts/install_browser.sh
set -euo pipefail

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

version() {
    # `chromium --version` may print warnings on stderr; keep the version line.
    "$CHROMIUM" --version 2>/dev/null | head -n 1 || true
}

has_cjk_font() {
    command -v fc-list >/dev/null 2>&1 && [ -n "$(fc-list :lang=zh family 2>/dev/null | head -n 1)" ]
}

packages=()
[ -x "$CHROMIUM" ] || packages+=(chromium)
if [ "${GRIDKIT_SKIP_CJK_FONT:-0}" != "1" ] && ! has_cjk_font; then
    packages+=(fonts-noto-cjk)
fi

if [ ${#packages[@]} -eq 0 ]; then
    echo "chromium already installed: $(version)"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install_browser.sh: need root (or sudo) to apt-get install ${packages[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
for pkg in "${packages[@]}"; do
    candidate=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        $SUDO apt-get update -qq
        break
    fi
done
echo "installing ${packages[*]} ..."
$SUDO apt-get install -y -qq "${packages[@]}" >/dev/null

if [ ! -x "$CHROMIUM" ]; then
    echo "install_browser.sh: apt-get installed chromium but $CHROMIUM is missing" >&2
    exit 1
fi
echo "chromium installed: $(version)"
if has_cjk_font; then
    echo "Chinese font: $(fc-list :lang=zh family | head -n 1)"
fi
