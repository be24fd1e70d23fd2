"""Measure the reference algorithm's speed on a clip: PyAV decoding of every
frame, and the detector on every Nth frame, separately and in one loop.

usage: python -m algorithms.reference.measure CLIP [--every N] [--height H]
       [--detector ssdlite --model PATH]
"""

from __future__ import annotations

import argparse
import time

import av

from .engine.detector import Detector, HogDetector, SsdLiteDetector
from .engine.frames import Picture
from .engine.rules import DEFAULT_MIN_CONFIDENCE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("clip")
    ap.add_argument("--every", type=int, default=0, help="detect on every Nth frame (0: 5 fps)")
    ap.add_argument("--height", type=int, default=800, help="detector working height")
    ap.add_argument("--scale", type=float, default=1.15)
    ap.add_argument("--detector", choices=("hog", "ssdlite"), default="hog")
    ap.add_argument("--model", default="", help="ssdlite: the ONNX model")
    args = ap.parse_args()
    detector: Detector = (
        HogDetector(working_height=args.height, scale=args.scale)
        if args.detector == "hog"
        else SsdLiteDetector(args.model)
    )
    what = "SSDLite"
    if args.detector == "hog":
        what = f"HOG (height {args.height}, scale {args.scale})"

    with av.open(args.clip) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        rate = float(s.average_rate or 25)
        every = args.every or max(1, round(rate / 5))
        t = time.perf_counter()
        frames = [Picture.of_frame(f) for i, f in enumerate(c.decode(s)) if i % every == 0]
        decode_s = time.perf_counter() - t
    with av.open(args.clip) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        t = time.perf_counter()
        n = sum(1 for _ in c.decode(s))
        bare_decode_s = time.perf_counter() - t
    t = time.perf_counter()
    people = [len(detector.detect(f, DEFAULT_MIN_CONFIDENCE)) for f in frames]
    detect_s = time.perf_counter() - t
    h, w = frames[0].height, frames[0].width
    print(f"clip {args.clip}: {w}x{h}, {n} frames at {rate:g} fps ({n / rate:.1f} s)")
    print(f"decode every frame: {n / bare_decode_s:.0f} fps")
    print(
        f"{what} on every {every}th frame: "
        f"{len(frames) / detect_s:.1f} fps, {sum(people) / len(people):.1f} people per frame"
    )
    total = bare_decode_s + detect_s
    print(
        f"decode all + detect every {every}th: {n / total:.0f} video fps "
        f"= {n / rate / total:.2f}x real time (conversion of sampled frames: {decode_s:.1f} s)"
    )


if __name__ == "__main__":
    main()
