#!/usr/bin/env bash
# Cache real test footage for the reference algorithm's tests and benchmarks.
#
# vtest.avi (768x576, 10 fps, 795 frames of pedestrians in a car park, OpenCV
# licence) comes from Debian's opencv-doc package, extracted without installing
# it. The derived clips are made with PyAV (no ffmpeg binary needed):
#   vtest_8s.mp4         first 8 s of vtest, H.264, 10 fps (fast tests)
#   vtest_1080p25_20s.mp4 vtest cropped to 16:9, scaled to 1920x1080, 25 fps, 20 s
# and only when asked (--long, or FACILITY_MEDIA_LONG=1; about a minute to encode
# on 2 cores, so CI does not make it):
#   vtest_1080p25_60s.mp4 the same, 60 s (bench/bench_engine_overhead.py)
#
# Idempotent: files already in the cache are kept. Prints the cache folder.
# usage: scripts/fetch-test-media.sh [--long]   (cache: ${FACILITY_CACHE_DIR:-.cache}/media)
set -euo pipefail
long="${FACILITY_MEDIA_LONG:-0}"
for arg in "$@"; do
  case "$arg" in
  --long) long=1 ;;
  *) echo "usage: $0 [--long]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.."
media="${FACILITY_CACHE_DIR:-.cache}/media"
mkdir -p "$media"
media="$(cd "$media" && pwd)"
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi

if [ ! -s "$media/vtest.avi" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # apt-get download drops privileges to _apt; let it write into the folder.
  chmod 777 "$work"
  if ! (cd "$work" && apt-get download -q opencv-doc >&2); then
    echo "fetch-test-media: apt-get download failed; running apt-get update once" >&2
    apt-get update -q >&2
    (cd "$work" && apt-get download -q opencv-doc >&2)
  fi
  deb="$(ls "$work"/opencv-doc_*.deb)"
  dpkg-deb --fsys-tarfile "$deb" \
    | tar -x -C "$work" ./usr/share/doc/opencv-doc/examples/data/vtest.avi
  mv "$work/usr/share/doc/opencv-doc/examples/data/vtest.avi" "$media/vtest.avi.part"
  mv "$media/vtest.avi.part" "$media/vtest.avi"
fi

# Derived clips, made with PyAV. Each is written to a .part file and renamed,
# so an interrupted run never leaves a truncated clip behind.
"$python" - "$media" "$long" <<'PY'
import os
import sys
from fractions import Fraction

import av

media = sys.argv[1]
src = os.path.join(media, "vtest.avi")


def make(name, seconds, fps, size=None, crop=None):
    dst = os.path.join(media, name)
    if os.path.exists(dst) and os.path.getsize(dst) > 0:
        return
    tmp = dst + ".part"
    with av.open(src) as inp, av.open(tmp, "w", format="mp4") as out:
        vin = inp.streams.video[0]
        w, h = size or (vin.codec_context.width, vin.codec_context.height)
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"preset": "veryfast", "bf": "0", "g": str(fps * 2)}
        vs.codec_context.time_base = Fraction(1, fps)
        src_fps = float(vin.average_rate or 10)
        n_out = 0
        for i, frame in enumerate(inp.decode(vin)):
            t = i / src_fps
            if t >= seconds:
                break
            img = frame.to_ndarray(format="rgb24")
            if crop:
                x, y, cw, ch = crop
                img = img[y : y + ch, x : x + cw]
            # repeat source frames to reach the output rate (10 fps -> 25 fps)
            while n_out / fps < t + 1 / src_fps - 1e-9 and n_out / fps < seconds:
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                if (vf.width, vf.height) != (w, h):
                    vf = vf.reformat(width=w, height=h, interpolation="BICUBIC")
                vf = vf.reformat(format="yuv420p")
                vf.pts = n_out
                vf.time_base = Fraction(1, fps)
                for pkt in vs.encode(vf):
                    out.mux(pkt)
                n_out += 1
        for pkt in vs.encode():
            out.mux(pkt)
    os.replace(tmp, dst)


make("vtest_8s.mp4", seconds=8, fps=10)
make("vtest_1080p25_20s.mp4", seconds=20, fps=25, size=(1920, 1080), crop=(0, 40, 768, 432))
if sys.argv[2] == "1":
    make("vtest_1080p25_60s.mp4", seconds=60, fps=25, size=(1920, 1080), crop=(0, 40, 768, 432))
PY
echo "$media"
