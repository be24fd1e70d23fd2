"""Reference engine memory over a long run (issue 4): is the engine's resident
memory flat while it analyses a looping stream?

    .venv/bin/python bench/bench_engine_memory.py [--minutes 10] [--source rtsp|file]

* source `rtsp` (default): the loopback RTSP server (tests/support/rtsp.py,
  Debian's gst-rtsp-server; scripts/ensure-rtsp.sh) loops a 20 s 1080p25 H.264
  clip of vtest in real time, forever; the engine runs ONE task on it for the
  whole run, as it would on a camera. `file`: the engine analyses the 1080p25
  clip in real time (ENGINE_FILE_SPEED=1) and the bench starts a new task
  whenever one finishes (task churn: new threads, containers, detectors).
* the engine is `python -m algorithms.reference.engine` as a subprocess with
  its defaults (5 fps analysed, HOG), one full-frame PERSON_IN_AREA rule
  (events with JPEG snapshots every 5 s while people are in view), no event
  sink. Like the facility's monitoring, the bench asks for the task's detail
  and /Health every --poll-s seconds on a new connection each (a new HTTP
  server thread each time).
* RSS (psutil) is sampled every --sample-s seconds. Baseline, measured in the
  same run before the task starts: the idle engine for --baseline-s seconds
  (its RSS and slope). The first --warmup-s seconds of analysis are excluded
  from the verdict (allocator arenas, codec and HOG buffers fill up); then
  start = median of the first minute after the warm-up, end = median of the
  last minute, slope = least squares over the measured part and over its
  second half, in MB/min. Flat: the slope over the measured part is at most
  --max-slope MB/min (default 0.2, i.e. under 2 MB over 10 minutes).
* --env NAME=VALUE passes engine settings (e.g. ENGINE_MALLOC_TRIM_S=0 to
  see the engine without its allocator housekeeping).

Writes bench/results/bench_engine_memory.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import EngineProcess, Report, task_body  # noqa: E402

MB = 2**20


class Engine(EngineProcess):
    """The engine as a subprocess, its RSS sampled in a thread."""

    def __init__(self, env: dict[str, str], sample_s: float) -> None:
        super().__init__(env)
        self.t0 = time.monotonic()
        self.samples: list[tuple[float, float]] = []  # (seconds since start, RSS MB)
        self._done = threading.Event()
        self._sample_s = sample_s
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while True:
            try:
                rss = self.ps.memory_info().rss / MB
            except Exception:
                return
            self.samples.append((time.monotonic() - self.t0, rss))
            if self._done.wait(self._sample_s):
                return

    def stop(self) -> None:
        self._done.set()
        super().stop()


def slope(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope in MB/min."""
    if len(samples) < 3:
        return 0.0
    xs = [t / 60 for t, _ in samples]
    ys = [r for _, r in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores"


def source_url(kind: str) -> tuple[str, Any]:
    """(URL, the thing to close afterwards)."""
    from tests.support.rtsp import RtspServer, ensure_media, ts_clip, unavailable_reason

    if kind == "rtsp":
        reason = unavailable_reason()
        if reason:
            raise SystemExit(f"RTSP server unavailable: {reason} (try --source file)")
        server = RtspServer(ts_clip(seconds=20, fps=25, size=(1920, 1080)))
        server.start()
        server.wait_playable()
        return server.url, server
    clip = ensure_media() / "vtest_1080p25_20s.mp4"
    if not clip.is_file():
        raise SystemExit(f"{clip} missing: run scripts/fetch-test-media.sh")
    return f"file://{clip}", None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--minutes", type=float, default=10.0, help="analysis time, warm-up included"
    )
    parser.add_argument("--source", choices=("rtsp", "file"), default="rtsp")
    parser.add_argument("--sample-s", type=float, default=5.0)
    parser.add_argument("--poll-s", type=float, default=2.0)
    parser.add_argument("--baseline-s", type=float, default=60.0)
    parser.add_argument("--warmup-s", type=float, default=120.0)
    parser.add_argument("--max-slope", type=float, default=0.2, help="MB/min")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--name", default="bench_engine_memory", help="results file name")
    args = parser.parse_args()
    extra = dict(item.split("=", 1) for item in args.env)

    report = Report(args.name)
    url, server = source_url(args.source)
    env = {"ENGINE_ANALYSIS_FPS": "5", "ENGINE_FILE_SPEED": "1", "ENGINE_CAPACITY": "1", **extra}
    report(
        f"source {args.source}: {url.split('/')[-1]} (1920x1080 H.264, 25 fps, looping); engine "
        f"env {' '.join(f'{k}={v}' for k, v in sorted(env.items()))}; RSS every "
        f"{args.sample_s:g} s, detail + /Health every {args.poll_s:g} s"
    )
    report(f"at start: {load()}")
    engine = Engine(env, args.sample_s)
    tasks = 0
    totals = {"FramesDecoded": 0, "FramesAnalysed": 0, "Events": 0, "AnalysisSkipped": 0}
    try:
        # the baseline: the idle engine, same sampling and polling
        end = time.monotonic() + args.baseline_s
        while time.monotonic() < end:
            engine.call("GET", "/Health")
            time.sleep(args.poll_s)
        task_start = time.monotonic() - engine.t0
        cpu0 = engine.cpu()
        end = time.monotonic() + args.minutes * 60
        task_id = f"mem-{tasks}"
        engine.call("POST", "/AlgoTasks", task_body(task_id, url))
        tasks = 1
        while time.monotonic() < end:
            time.sleep(args.poll_s)
            detail = engine.call("GET", f"/AlgoTasks/{task_id}")
            engine.call("GET", "/Health")
            if detail["Status"] in ("FINISHED", "ERROR"):
                if detail["Status"] == "ERROR" and args.source == "rtsp":
                    raise SystemExit(f"task failed: {detail}")
                for key in totals:
                    totals[key] += detail["Stats"][key]
                engine.call("DELETE", f"/AlgoTasks/{task_id}")
                task_id = f"mem-{tasks}"
                engine.call("POST", "/AlgoTasks", task_body(task_id, url))
                tasks += 1
        detail = engine.call("GET", f"/AlgoTasks/{task_id}")
        for key in totals:
            totals[key] += detail["Stats"][key]
        cpu = engine.cpu() - cpu0
    finally:
        engine.stop()
        if server is not None:
            server.close()
    report(f"at end: {load()}")

    samples = engine.samples
    idle = [s for s in samples if s[0] < task_start]
    run = [s for s in samples if s[0] >= task_start]
    measured = [s for s in run if s[0] >= task_start + args.warmup_s]
    if len(measured) < 6:
        raise SystemExit("run too short for a verdict: raise --minutes or lower --warmup-s")
    span_min = (measured[-1][0] - measured[0][0]) / 60
    first = [r for t, r in measured if t <= measured[0][0] + 60]
    last = [r for t, r in measured if t >= measured[-1][0] - 60]
    half = [s for s in measured if s[0] >= measured[0][0] + (measured[-1][0] - measured[0][0]) / 2]
    run_s = samples[-1][0] - task_start
    report(
        f"analysis: {run_s / 60:.1f} min, {tasks} task(s), {totals['FramesDecoded']} frames "
        f"decoded, {totals['FramesAnalysed']} analysed ({totals['FramesAnalysed'] / run_s:.2f}/s), "
        f"{totals['AnalysisSkipped']} skipped, {totals['Events']} events; engine "
        f"{cpu / run_s:.2f} CPU cores"
    )
    report(
        f"baseline (idle engine, {args.baseline_s:g} s): RSS "
        f"{statistics.median(r for _, r in idle):.1f} MB, slope {slope(idle):+.2f} MB/min"
    )
    report(
        f"warm-up ({args.warmup_s:g} s, not judged): RSS {run[0][1]:.1f} -> "
        f"{[r for t, r in run if t < task_start + args.warmup_s][-1]:.1f} MB"
    )
    verdict_slope = slope(measured)
    report(
        f"measured ({span_min:.1f} min after the warm-up, {len(measured)} samples): start "
        f"{statistics.median(first):.1f} MB, end {statistics.median(last):.1f} MB, max "
        f"{max(r for _, r in measured):.1f} MB; slope {verdict_slope:+.3f} MB/min "
        f"(second half {slope(half):+.3f} MB/min) vs idle {slope(idle):+.3f} MB/min"
    )
    flat = verdict_slope <= args.max_slope
    report(
        f"verdict: {'FLAT' if flat else 'GROWING'} (slope {verdict_slope:+.3f} MB/min, target "
        f"<= {args.max_slope:g}; {verdict_slope * span_min:+.1f} MB over {span_min:.1f} min)"
    )
    report(
        "RSS by minute of analysis (MB, median): "
        + " ".join(
            f"{statistics.median(r for t, r in run if m * 60 <= t - task_start < (m + 1) * 60):.0f}"
            for m in range(int(run_s // 60))
            if any(m * 60 <= t - task_start < (m + 1) * 60 for t, _ in run)
        )
    )
    path = report.write()
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
