#!/usr/bin/env bash
# Make sure Debian's headless-capable Chromium is installed at /usr/bin/chromium
# (the dashboard's screenshot test, tests/compute/test_dashboard_browser.py).
# Idempotent: when /usr/bin/chromium runs it does nothing. Otherwise it
# installs the `chromium` package with apt-get (needs root, or sudo without a
# password). Exit status: 0 when chromium runs, 1 otherwise (reason on stderr).
set -euo pipefail

chromium_bin="${FACILITY_CHROMIUM:-/usr/bin/chromium}"

runs() {
    [ -x "$chromium_bin" ] && "$chromium_bin" --version >/dev/null 2>&1
}

if runs; then
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "ensure-chromium: $chromium_bin is missing and this is not root (nor passwordless sudo)" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: $chromium_bin is missing and there is no apt-get to install it" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# a stale package index makes `install` fail with 404s: refresh it first
if ! "${as_root[@]}" apt-get update -qq >&2; then
    echo "ensure-chromium: apt-get update failed" >&2
    exit 1
fi
if ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2; then
    echo "ensure-chromium: apt-get install chromium failed" >&2
    exit 1
fi

if runs; then
    exit 0
fi
echo "ensure-chromium: chromium was installed but $chromium_bin --version fails" >&2
exit 1
