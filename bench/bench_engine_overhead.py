"""Reference engine overhead (issue 4): the CPU seconds the engine spends on a
minute of 1080p25 H.264 analysed at 5 fps, divided by the CPU seconds of its
bare parts on the same clip in the same run. Target: at most 1.15.

    .venv/bin/python bench/bench_engine_overhead.py [--rounds 2] [--soak-minutes 2]

The clip is vtest_1080p25_60s.mp4 (scripts/fetch-test-media.sh --long makes it;
this script runs that when it is missing).

* bare parts: a fresh Python process that decodes every frame with PyAV (frame
  threading, as the engine) and, on every 5th frame, converts it to BGR and runs
  the engine's HOG detector at its defaults (the detector's input is a BGR
  array, so the conversion counts as part of it). Its CPU time (user + system,
  getrusage) covers the loop only, not imports.
* the engine: `python -m algorithms.reference.engine` as a subprocess with
  ENGINE_FILE_SPEED=0 (as fast as it goes; decoding waits for the analysis, so
  every scheduled frame is analysed, like the bare loop) and ENGINE_ANALYSIS_FPS=5;
  one task with a full-frame rule that raises PERSON_IN_AREA events (JPEG
  snapshots) every 5 s while people are present. Its CPU time (psutil, with
  children) from POST /AlgoTasks until FINISHED, the status polls included.
* memory: the engine's RSS sampled every 0.5 s during the rounds, then a soak of
  --soak-minutes where the engine analyses the clip again and again in real time
  (ENGINE_FILE_SPEED=1, a camera-like load); reported as RSS at the start,
  the end, the maximum, and the slope over the second half.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import EngineProcess, task_body  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bench_engine_overhead.md"
CLIP_NAME = "vtest_1080p25_60s.mp4"
_lines: list[str] = []


def report(line: str = "") -> None:
    print(line, flush=True)
    _lines.append(line)


def media_dir() -> Path:
    cache = Path(os.environ.get("FACILITY_CACHE_DIR", ".cache"))
    return (cache if cache.is_absolute() else ROOT / cache) / "media"


def clip_path() -> Path:
    clip = media_dir() / CLIP_NAME
    if not clip.is_file():
        print(f"making {clip} (scripts/fetch-test-media.sh --long)", flush=True)
        subprocess.run(
            ["bash", str(ROOT / "scripts/fetch-test-media.sh"), "--long"],
            cwd=ROOT,
            env={**os.environ, "PYTHON": sys.executable},
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return clip


# --- the bare parts (run in a child process: `--bare CLIP`) ---------------------


def cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare(clip: str, every: int) -> dict[str, Any]:
    import av

    from algorithms.reference.engine.detector import HogDetector
    from algorithms.reference.engine.frames import Picture
    from algorithms.reference.engine.rules import DEFAULT_MIN_CONFIDENCE

    detector = HogDetector()
    # decode only (every frame): the decoding part alone
    with av.open(clip) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        c0, w0 = cpu_self(), time.perf_counter()
        decoded = sum(1 for _ in container.decode(stream))
        decode_cpu, decode_wall = cpu_self() - c0, time.perf_counter() - w0
    # the bare parts in one loop: decode every frame, detect every `every`th
    with av.open(clip) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        c0, w0 = cpu_self(), time.perf_counter()
        analysed = people = 0
        for index, frame in enumerate(container.decode(stream)):
            if index % every == 0:
                picture = Picture.of_frame(frame)
                people += len(detector.detect(picture, DEFAULT_MIN_CONFIDENCE))
                analysed += 1
        cpu, wall = cpu_self() - c0, time.perf_counter() - w0
    return {
        "decoded": decoded,
        "analysed": analysed,
        "people": people,
        "cpu": cpu,
        "wall": wall,
        "decode_cpu": decode_cpu,
        "decode_wall": decode_wall,
    }


def run_bare(clip: Path, every: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--bare", str(clip), "--every", str(every)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the engine -------------------------------------------------------------------


class Engine(EngineProcess):
    """The engine (bench.common.EngineProcess), its RSS sampled every 0.5 s and its
    CPU time counted with its children's."""

    def __init__(self, **env: str) -> None:
        super().__init__(env)
        self.rss: list[tuple[float, int]] = []
        self._sampling = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        start = time.monotonic()
        while not self._sampling.wait(0.5):
            try:
                self.rss.append((time.monotonic() - start, self.ps.memory_info().rss))
            except Exception:
                return

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system + times.children_user + times.children_system)

    def analyse(self, clip: Path, task_id: str) -> tuple[dict[str, Any], float, float]:
        """Run one task on the clip to its end; (detail, CPU s, wall s)."""
        c0, w0 = self.cpu(), time.perf_counter()
        self.call("POST", "/AlgoTasks", task_body(task_id, f"file://{clip}"))
        while (detail := self.call("GET", f"/AlgoTasks/{task_id}"))["Status"] != "FINISHED":
            if detail["Status"] == "ERROR":
                raise SystemExit(f"task failed: {detail}")
            time.sleep(0.5)
        cpu, wall = self.cpu() - c0, time.perf_counter() - w0
        self.call("DELETE", f"/AlgoTasks/{task_id}")
        return detail, cpu, wall

    def stop(self) -> None:
        self._sampling.set()
        super().stop()


def mb(value: float) -> str:
    return f"{value / 2**20:.0f} MB"


def slope_mb_per_min(samples: list[tuple[float, int]]) -> float:
    if len(samples) < 3:
        return 0.0
    xs = [t / 60 for t, _ in samples]
    ys = [r / 2**20 for _, r in samples]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs) or 1.0
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / den


def soak(clip: Path, minutes: float) -> None:
    engine = Engine(ENGINE_FILE_SPEED="1", ENGINE_ANALYSIS_FPS="5", ENGINE_CAPACITY="1")
    try:
        end = time.monotonic() + minutes * 60
        passes = 0
        while time.monotonic() < end:
            task_id = f"soak-{passes}"
            engine.call("POST", "/AlgoTasks", task_body(task_id, f"file://{clip}", repeat_s=None))
            while time.monotonic() < end:
                detail = engine.call("GET", f"/AlgoTasks/{task_id}")
                if detail["Status"] in ("FINISHED", "ERROR"):
                    break
                time.sleep(1.0)
            engine.call("DELETE", f"/AlgoTasks/{task_id}")
            passes += 1
        cpu = engine.cpu()
    finally:
        engine.stop()
    samples = engine.rss
    if not samples:
        return
    first_min = [r for t, r in samples if t <= 60]
    last_min = [r for t, r in samples if t >= samples[-1][0] - 60]
    half = [s for s in samples if s[0] >= samples[-1][0] / 2]
    report(
        f"soak: {minutes:g} min in real time (ENGINE_FILE_SPEED=1), {passes} task(s) on "
        f"the clip, {cpu / (minutes * 60):.2f} CPU cores on average"
    )
    report(
        f"  RSS median of the first minute {mb(statistics.median(first_min))}, of the last "
        f"minute {mb(statistics.median(last_min))}, max {mb(max(r for _, r in samples))}; "
        f"slope over the second half {slope_mb_per_min(half):+.2f} MB/min "
        f"({len(samples)} samples)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--soak-minutes", type=float, default=2.0)
    parser.add_argument("--bare", metavar="CLIP", help=argparse.SUPPRESS)
    parser.add_argument("--every", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        print(json.dumps(bare(args.bare, args.every)))
        return

    clip = clip_path()
    import av

    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        rate = float(stream.average_rate or 25)
        size = f"{stream.codec_context.width}x{stream.codec_context.height}"
        seconds = float(container.duration or 0) / 1e6
    every = max(1, round(rate / 5))
    report(
        f"clip {clip.name}: {size} H.264 at {rate:g} fps, {seconds:.0f} s; analysed at 5 fps "
        f"(every {every}th frame); {os.cpu_count()} CPU cores"
    )
    ratios = []
    engine = Engine(ENGINE_FILE_SPEED="0", ENGINE_ANALYSIS_FPS="5")
    try:
        for number in range(1, args.rounds + 1):
            parts = run_bare(clip, every)
            detail, cpu, wall = engine.analyse(clip, f"bench-{number}")
            stats = detail["Stats"]
            ratio = cpu / parts["cpu"]
            ratios.append(ratio)
            report(
                f"round {number}: bare parts {parts['cpu']:.1f} CPU s ({parts['wall']:.1f} s wall; "
                f"decoding alone {parts['decode_cpu']:.1f} CPU s; {parts['decoded']} frames "
                f"decoded, {parts['analysed']} analysed, {parts['people']} people) | engine "
                f"{cpu:.1f} CPU s ({wall:.1f} s wall; {stats['FramesDecoded']} decoded, "
                f"{stats['FramesAnalysed']} analysed, {stats['AnalysisSkipped']} skipped, "
                f"{stats['Events']} events) | ratio {ratio:.3f}"
            )
    finally:
        engine.stop()
    rss = [r for _, r in engine.rss]
    report(
        f"engine overhead: median ratio {statistics.median(ratios):.3f} "
        f"(target <= 1.15) over {len(ratios)} round(s)"
    )
    if rss:
        report(
            f"engine RSS during the rounds: first {mb(rss[0])}, last {mb(rss[-1])}, "
            f"max {mb(max(rss))}"
        )
    if args.soak_minutes > 0:
        soak(clip, args.soak_minutes)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        "# bench_engine_overhead\n\n```\n$ "
        + " ".join(["bench/bench_engine_overhead.py", *sys.argv[1:]])
        + "\n"
        + "\n".join(_lines)
        + "\n```\n"
    )


if __name__ == "__main__":
    main()
