"""What the benchmarks share: a report that is printed and written to
bench/results/<name>.md, percentiles, timing loops, a scratch database
made and dropped around a run, and the reference engine as a subprocess with
the body of a task on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"


class Report:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def write(self) -> Path:
        """bench/results/<name>.md: the command line and every reported line."""
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{self.name}.md"
        command = " ".join([f"bench/{self.name}.py", *sys.argv[1:]])
        path.write_text(f"# {self.name}\n\n```\n$ {command}\n" + "\n".join(self.lines) + "\n```\n")
        return path


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(call: Callable[[], Any], repeat: int, warm: int = 10) -> list[float]:
    """Seconds per call, after `warm` calls that fill caches and connections."""
    for _ in range(min(warm, repeat)):
        call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append(time.perf_counter() - start)
    return samples


@contextmanager
def scratch_database(prefix: str, keep: bool = False) -> Iterator[None]:
    """A test database of its own for the run (Django must be set up)."""
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_test_environment

    setup_test_environment()
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"{prefix}_{os.getpid()}"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield
    finally:
        if keep:
            print(f"kept database {connection.settings_dict['NAME']}")
        else:
            connection.close()
            connection.creation.destroy_test_db(old_name, verbosity=0)


class EngineProcess:
    """`python -m algorithms.reference.engine` as a subprocess on a free port of
    127.0.0.1 (ENGINE_PORT=0), with `env` over this process's environment less
    its ENGINE_* and EVENT_* settings; ready once it prints `ENGINE READY <url>`.
    The benches subclass it for what they measure besides."""

    def __init__(self, env: dict[str, str]) -> None:
        import psutil

        full = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_", "EVENT_"))}
        full.update({"ENGINE_PORT": "0", "ENGINE_HOST": "127.0.0.1", **env})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "algorithms.reference.engine"],
            cwd=ROOT,
            env=full,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ENGINE READY "):
            self.proc.kill()
            raise SystemExit(f"engine did not start: {line!r}")
        self.url = line.split()[2]
        self.ps = psutil.Process(self.proc.pid)

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The engine's API: the `Data` of its answer."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["Data"]

    def cpu(self) -> float:
        """The engine's CPU seconds so far (user + system)."""
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def task_body(task_id: str, url: str, repeat_s: int | None = 5) -> dict[str, Any]:
    """POST /AlgoTasks: one full-frame PERSON_IN_AREA rule on `url`, an event
    every `repeat_s` seconds while people are in view (None: the engine's
    default)."""
    extend = {} if repeat_s is None else {"RepeatAlarmIntervalThreshold": repeat_s}
    return {
        "TaskID": task_id,
        "TaskInfo": {
            "StreamOptions": {"VideoStreamOptions": {"Url": url}},
            "RulesParams": [{"EventID": "PERSON_IN_AREA", "Areas": [], "ExtendParams": extend}],
        },
    }
