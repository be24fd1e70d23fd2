"""Guards for the engine's flat memory (issue 4; bench/bench_engine_memory.py
measures RSS over a long run): what a task keeps per analysed frame is
bounded, a deleted task leaves nothing behind, and the allocator
housekeeping runs on this platform."""

from __future__ import annotations

import gc
import platform
import threading
import time
import weakref
from pathlib import Path

import psutil
import pytest

from algorithms.reference.engine import memory
from algorithms.reference.engine.config import EngineConfig
from algorithms.reference.engine.server import Engine
from algorithms.reference.engine.task import FPS_WINDOW_S
from tests.reference.conftest import task_body


def test_analysis_timestamps_stay_within_the_fps_window_without_polling() -> None:
    """The Fps window used to be pruned only by detail(): a task nobody
    polled kept a timestamp per analysed frame for ever."""
    config = EngineConfig()
    engine = Engine(config)
    try:
        spec = engine.create(task_body("t", "/nonexistent.mp4"))  # fails fast: a file
        task = engine.tasks[spec["TaskID"]]
        task.stop()
        per_s = 25
        for i in range(per_s * 600):  # ten minutes of analysis at 25 fps
            task._mark_analysed(1000.0 + i / per_s)
        assert task.frames_analysed == per_s * 600
        assert len(task._analysed_at) <= per_s * FPS_WINDOW_S + 1
    finally:
        engine.shutdown(join_s=1)


def test_deleted_tasks_are_freed_with_their_threads(media: Path) -> None:
    """Task churn (a task per clip, again and again) must not accumulate:
    after DELETE the Task, its threads, its container and detector go."""
    config = EngineConfig(file_speed=0.0, analysis_fps=1.0, capacity=2)
    engine = Engine(config)
    clip = str(media / "vtest_8s.mp4")
    threads_before = threading.active_count()
    refs = []
    try:
        for n in range(3):
            created = engine.create(task_body(f"churn-{n}", clip))
            task = engine.tasks[created["TaskID"]]
            refs.append(weakref.ref(task))
            deadline = time.monotonic() + 60
            while task.status not in ("FINISHED", "ERROR") and time.monotonic() < deadline:
                time.sleep(0.05)
            assert task.status == "FINISHED", task.detail()
            assert task.frames_analysed >= 7
            engine.delete(created["TaskID"])
            del task, created
        deadline = time.monotonic() + 10
        while threading.active_count() > threads_before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert threading.active_count() <= threads_before
        gc.collect()
        assert [r() for r in refs] == [None, None, None]
        assert engine.tasks == {}
    finally:
        engine.shutdown(join_s=1)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_allocator_tuning_and_trim_apply_on_glibc() -> None:
    assert not memory.limit_arenas(0)  # 0: glibc's default is left alone
    assert memory.limit_arenas(EngineConfig().malloc_arenas)
    process = psutil.Process()
    # 128 MB in 64 KB blocks (below the mmap threshold: from the heap), written
    # to; the last one stays, so the heap's top cannot shrink by itself
    blocks = [b"x" * (64 * 1024) for _ in range(2048)]
    pin = blocks.pop()
    del blocks
    gc.collect()
    before = process.memory_info().rss
    assert memory.trim()  # free pages in the middle of the heap went back
    assert before - process.memory_info().rss > 64 * 2**20
    del pin
