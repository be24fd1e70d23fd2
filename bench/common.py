"""What the benchmarks share: a report that is printed and written to
bench/results/<name>.md, percentiles, timing loops, and a scratch database
made and dropped around a run."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
