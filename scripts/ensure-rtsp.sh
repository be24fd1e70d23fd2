#!/usr/bin/env bash
# Make sure a loopback RTSP server can run here (tests/support/rtsp.py): Debian's
# gst-rtsp-server through python3-gi, run by Debian's /usr/bin/python3 (the gi
# bindings live there, not in the venv). See ../shared/notes/video-test-media.md §3.
# Idempotent: when the bindings already import it does nothing. Otherwise it
# installs the packages with apt-get (needs root, or sudo without a password).
# Exit status: 0 when the server can run, 1 otherwise (reason on stderr).
set -euo pipefail

python="${FACILITY_RTSP_PYTHON:-/usr/bin/python3}"

ready() {
    [ -x "$python" ] && "$python" - >/dev/null 2>&1 <<'PY'
import gi
gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gst, GstRtspServer  # noqa: F401
Gst.init(None)
for name in ("udpsrc", "rtph264depay", "h264parse", "rtph264pay"):
    assert Gst.ElementFactory.find(name), name
PY
}

if ready; then
    exit 0
fi

if [ "$(id -u)" = 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "ensure-rtsp: the gst-rtsp-server bindings are missing and this is not root (nor passwordless sudo)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-rtsp: the gst-rtsp-server bindings are missing and there is no apt-get" >&2
    exit 1
fi

packages=(python3 python3-gi python3-gst-1.0 gir1.2-gst-rtsp-server-1.0
          gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad)
export DEBIAN_FRONTEND=noninteractive
if ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2; then
    # a stale package index makes `install` fail with 404s: refresh it once
    if ! "${as_root[@]}" apt-get update -qq >&2 \
        || ! "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}" >&2; then
        echo "ensure-rtsp: apt-get install ${packages[*]} failed" >&2
        exit 1
    fi
fi
if ! ready; then
    echo "ensure-rtsp: installed, but $python still cannot load GstRtspServer and the H.264 RTP elements" >&2
    exit 1
fi
