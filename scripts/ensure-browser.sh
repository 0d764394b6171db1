#!/usr/bin/env bash
# Debian's Chromium and fonts for the browser tests (Playwright drives it; it never downloads one),
# and zbar-tools for decoding QR codes in the tests.
set -euo pipefail
need=()
[[ -x /usr/bin/chromium ]] || need+=(chromium)
dpkg -s fonts-noto-core >/dev/null 2>&1 || need+=(fonts-noto-core)
dpkg -s fonts-noto-color-emoji >/dev/null 2>&1 || need+=(fonts-noto-color-emoji)
# zbarimg reads the links' QR codes back in the tests.
command -v zbarimg >/dev/null || need+=(zbar-tools)
[[ ${#need[@]} -eq 0 ]] && exit 0
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }
echo "Installing ${need[*]} for the browser tests" >&2
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
