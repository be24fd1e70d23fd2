"""Streams per machine (issue 5): how many 1080p25 camera streams the
reference engine sustains on this machine at its analysis rate (5 fps).

    .venv/bin/python bench/bench_streams.py [--max-streams 6] [--variant ENGINE_DETECT_HEIGHT=640]
        [--variant ENGINE_DETECTOR=ssdlite] [--skip-default]

* streams: the loopback RTSP server (tests/support/rtsp.py; Debian's
  gst-rtsp-server, scripts/ensure-rtsp.sh) loops a 20 s 1920x1080 25 fps H.264
  clip of vtest (people walking) in real time; every task reads it like a
  camera (its own RTSP session, its own decoder, every frame decoded).
* the engine: one `python -m algorithms.reference.engine` subprocess with its
  defaults (ENGINE_ANALYSIS_FPS=5, HOG at ENGINE_DETECT_HEIGHT=800), one
  full-frame PERSON_IN_AREA rule per task. Streams are added one at a time;
  after --settle-s seconds, each task's analysed frames are counted over
  --window-s seconds. A count is sustained when every stream is analysed at
  >= --ratio (95 %) of the target rate and decoded at >= 95 % of 25 fps;
  adding stops at the first count that is not.
* baseline, same run, same clip, one process: decode only (PyAV, frame
  threading, as the engine; every frame, no conversion) as fast as it goes,
  and each detector alone on 1080p frames (the engine's settings; SSDLite
  when scripts/fetch-detector.sh has cached its model), in frames per second.
  decode fps / 25 and detector fps / 5 are the ceilings the parts alone would
  allow on an idle machine.
* --variant NAME=VALUE[,NAME=VALUE] runs the search again with those engine
  settings (a smaller detection size; ENGINE_DETECTOR=ssdlite, which gets the
  cached model), for comparison.

Other sessions share this machine's CPU: the load average is reported at the
start and end of each search. Writes bench/results/bench_streams.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import EngineProcess, Report, task_body  # noqa: E402

TARGET_DECODE_FPS = 25.0


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f}/{five:.1f} (1/5 min) on {os.cpu_count()} cores"


# --- baseline (child process: `--parts CLIP`) ------------------------------------


def parts(clip: str, seconds: float) -> dict[str, Any]:
    import av

    from algorithms.reference.cache import default_model
    from algorithms.reference.engine.detector import HogDetector, SsdLiteDetector
    from algorithms.reference.engine.frames import Picture
    from algorithms.reference.engine.rules import DEFAULT_MIN_CONFIDENCE

    with av.open(clip) as container:  # warm the file cache and the codec
        for _ in zip(range(25), container.decode(video=0), strict=False):
            pass
    with av.open(clip) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        w0 = time.perf_counter()
        decoded = sum(1 for _ in container.decode(stream))
        decode_fps = decoded / (time.perf_counter() - w0)
    with av.open(clip) as container:
        pictures = [
            Picture.of_frame(f)
            for i, f in enumerate(container.decode(video=0))
            if i % 25 == 0 and i < 500
        ]
    result: dict[str, Any] = {"decode_fps": decode_fps, "decoded": decoded}
    detectors: dict[str, Any] = {"hog": HogDetector}
    if default_model().is_file():
        detectors["ssdlite"] = lambda: SsdLiteDetector(default_model())
    for name, factory in detectors.items():
        detector = factory()
        detector.detect(pictures[0], DEFAULT_MIN_CONFIDENCE)
        w0 = time.perf_counter()
        runs = people = 0
        while time.perf_counter() - w0 < seconds:
            people += len(detector.detect(pictures[runs % len(pictures)], DEFAULT_MIN_CONFIDENCE))
            runs += 1
        result[name] = {"fps": runs / (time.perf_counter() - w0), "people_per_frame": people / runs}
    return result


def run_parts(clip: Path, seconds: float) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--parts", str(clip), "--seconds", str(seconds)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the engine (bench.common.EngineProcess) ----------------------------------------


def counters(engine: EngineProcess, ids: list[str]) -> dict[str, tuple[int, int, str]]:
    out = {}
    for task_id in ids:
        d = engine.call("GET", f"/AlgoTasks/{task_id}")
        out[task_id] = (d["Stats"]["FramesAnalysed"], d["Stats"]["FramesDecoded"], d["Status"])
    return out


def search(
    report: Report, url: str, env: dict[str, str], args: argparse.Namespace, label: str
) -> tuple[int, float]:
    """(streams sustained, the most analysed frames per second of all streams)."""
    fps = float(env.get("ENGINE_ANALYSIS_FPS", "5"))
    need = fps * args.ratio
    report(f"{label}: engine env {' '.join(f'{k}={v}' for k, v in sorted(env.items()))}")
    report(f"  start: {load()}")
    engine = EngineProcess({**env, "ENGINE_CAPACITY": str(args.max_streams)})
    sustained = 0
    best_total = 0.0
    ids: list[str] = []
    try:
        for n in range(1, args.max_streams + 1):
            task_id = f"s{n}"
            engine.call("POST", "/AlgoTasks", task_body(task_id, url))
            ids.append(task_id)
            time.sleep(args.settle_s)
            before, c0, t0 = counters(engine, ids), engine.cpu(), time.monotonic()
            time.sleep(args.window_s)
            after, c1, t1 = counters(engine, ids), engine.cpu(), time.monotonic()
            window = t1 - t0
            analysed = [(after[i][0] - before[i][0]) / window for i in ids]
            decoded = [(after[i][1] - before[i][1]) / window for i in ids]
            bad = [i for i in ids if after[i][2] != "RUNNING"]
            best_total = max(best_total, sum(analysed))
            ok = (
                not bad and min(analysed) >= need and min(decoded) >= TARGET_DECODE_FPS * args.ratio
            )
            report(
                f"  {n} stream(s): analysed per stream min {min(analysed):.2f} / mean "
                f"{sum(analysed) / n:.2f} fps (need >= {need:.2f}), decoded min "
                f"{min(decoded):.1f} fps, engine {(c1 - c0) / window:.2f} CPU cores, "
                f"{load()}{'; not RUNNING: ' + ', '.join(bad) if bad else ''}"
                f" -> {'sustained' if ok else 'NOT sustained'}"
            )
            if not ok:
                break
            sustained = n
    finally:
        engine.stop()
    report(
        f"  => {label}: {sustained} stream(s) of 1080p25 at {fps:g} fps analysed; at most "
        f"{best_total:.1f} frames analysed per second in all (= {best_total / fps:.1f} "
        "streams' worth)"
    )
    return sustained, best_total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-streams", type=int, default=6)
    parser.add_argument("--settle-s", type=float, default=10.0)
    parser.add_argument("--window-s", type=float, default=30.0)
    parser.add_argument("--ratio", type=float, default=0.95)
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]")
    parser.add_argument("--skip-default", action="store_true", help="only the variants")
    parser.add_argument("--parts", metavar="CLIP", help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=15.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.parts:
        print(json.dumps(parts(args.parts, args.seconds)))
        return

    from algorithms.reference.cache import default_model
    from tests.support.rtsp import RtspServer, ensure_media, ts_clip, unavailable_reason

    report = Report("bench_streams")
    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"RTSP server unavailable: {reason}")
    clip = ts_clip(seconds=20, fps=25, size=(1920, 1080))
    mp4 = ensure_media() / "vtest_1080p25_20s.mp4"
    report(
        f"machine: {os.cpu_count()} CPU cores; streams: {clip.name} (1920x1080 H.264 25 fps, "
        f"1 s GOP) looped by the loopback RTSP server; target {args.ratio:.0%} of the "
        "analysis rate per stream"
    )
    report(f"baseline start: {load()}")
    base = run_parts(mp4 if mp4.is_file() else clip, args.seconds)
    report(
        f"baseline (one process, same clip): decode only {base['decode_fps']:.0f} fps "
        f"(= {base['decode_fps'] / TARGET_DECODE_FPS:.1f} streams of 25 fps)"
        + "".join(
            f"; {name} alone on 1080p frames {base[name]['fps']:.1f} fps (= "
            f"{base[name]['fps'] / 5:.1f} streams at 5 fps; "
            f"{base[name]['people_per_frame']:.1f} people per frame)"
            for name in ("hog", "ssdlite")
            if name in base
        )
    )
    server = RtspServer(clip)
    server.start()
    try:
        server.wait_playable()
        results = {}
        if not args.skip_default:
            results["default"] = search(report, server.url, {}, args, "default")
        for variant in args.variant:
            env = dict(item.split("=", 1) for item in variant.split(","))
            if env.get("ENGINE_DETECTOR") == "ssdlite":
                env.setdefault("ENGINE_MODEL_PATH", str(default_model()))
            results[variant] = search(report, server.url, env, args, variant)
    finally:
        server.close()
    report(
        "result: "
        + ", ".join(f"{label}: {count} stream(s)" for label, (count, _) in results.items())
        + f" of 1080p25 at 5 fps analysed on this {os.cpu_count()}-core machine"
    )
    print(f"wrote {report.write()}")


if __name__ == "__main__":
    main()
