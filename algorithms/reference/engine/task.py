"""One analysis task: a decode thread and an analysis thread.

The decode thread decodes every frame of the source and hands one frame per
1/ENGINE_ANALYSIS_FPS seconds of the frame clock to the analysis thread, which
runs the detector and the rules and submits events. For live sources (and
paced files) the handoff keeps only the newest frame, so slow detection never
holds decoding up; for a file read as fast as possible (ENGINE_FILE_SPEED=0)
decoding waits for the analysis, so every scheduled frame is analysed.

The frame clock: Unix time at decode for live sources; for files the task's
start time plus the frame's media timestamp (so rule timing follows the video,
whatever the speed).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .config import EngineConfig
from .detector import Detector
from .events import EventSender, build_event
from .frames import Picture
from .rules import RuleState, TaskSpec
from .source import SourceError, is_live, open_source, reason_for

log = logging.getLogger("engine.task")

PENDING, RUNNING, PAUSED, FINISHED, ERROR = "PENDING", "RUNNING", "PAUSED", "FINISHED", "ERROR"
FPS_WINDOW_S = 5.0


class _Slot:
    """A one-frame handoff between the decode and the analysis thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: tuple[float, Picture] | None = None
        self._busy = False
        self.replaced = 0

    def put(self, item: tuple[float, Picture], *, wait: bool, alive: Callable[[], bool]) -> None:
        with self._cond:
            if wait:
                while (self._item is not None or self._busy) and alive():
                    self._cond.wait(timeout=0.1)
            elif self._item is not None:
                self.replaced += 1
            self._item = item
            self._cond.notify_all()

    def get(self, timeout: float) -> tuple[float, Picture] | None:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout=timeout)
            item, self._item = self._item, None
            self._busy = item is not None
            return item

    def done(self) -> None:
        with self._cond:
            self._busy = False
            self._cond.notify_all()

    def drain(self, alive: Callable[[], bool]) -> None:
        """Wait until the analysis thread has taken and finished the last frame."""
        with self._cond:
            while (self._item is not None or self._busy) and alive():
                self._cond.wait(timeout=0.1)

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


class Task:
    def __init__(
        self,
        task_id: str,
        spec: TaskSpec,
        config: EngineConfig,
        sender: EventSender,
        detector_factory: Callable[[], Detector],
    ) -> None:
        self.task_id = task_id
        self.config = config
        self.sender = sender
        self.detector_factory = detector_factory
        self._lock = threading.RLock()
        self._spec = spec
        self._rule_states = [RuleState(r) for r in spec.rules]
        self.status = PENDING
        self.reason = "connecting"
        self.live = spec.scheme != "file"
        self.frames_decoded = 0
        self.frames_analysed = 0
        self.decode_errors = 0
        self.reconnects = 0
        self.events = 0
        self.created = time.time()
        self.last_frame_at: float | None = None
        self._analysed_at: collections.deque[float] = collections.deque()
        self._stop = threading.Event()
        self._paused = threading.Event()
        self._reopen = threading.Event()
        self._wakeup = threading.Event()
        self._slot = _Slot()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------- control

    @property
    def spec(self) -> TaskSpec:
        with self._lock:
            return self._spec

    @property
    def active(self) -> bool:
        """Holds a stream slot (everything but FINISHED and a dead task)."""
        return self.status != FINISHED and any(t.is_alive() for t in self._threads)

    def start(self) -> None:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._decode_main, name=f"decode:{self.task_id}", daemon=True),
            threading.Thread(
                target=self._analysis_main, name=f"analyse:{self.task_id}", daemon=True
            ),
        ]
        for t in self._threads:
            t.start()

    def signal_stop(self) -> None:
        self._stop.set()
        self._wakeup.set()
        self._slot.wake()

    def stop(self, join_s: float = 2.0) -> None:
        self.signal_stop()
        deadline = time.monotonic() + join_s
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=max(0.0, deadline - time.monotonic()))

    def pause(self) -> None:
        with self._lock:
            self._paused.set()
            self._wakeup.set()
            if self.status in (PENDING, RUNNING, ERROR) and self.active:
                self._set(PAUSED, "")

    def resume(self) -> None:
        with self._lock:
            self._paused.clear()
            self._wakeup.set()
            if self.status == PAUSED:
                self._set(PENDING, "resuming")

    @property
    def paused(self) -> bool:
        return self._paused.is_set()

    def update(self, spec: TaskSpec) -> bool:
        """Replace the rules; reopen the stream only when the Url changed.
        Returns True when the stream will be reopened."""
        with self._lock:
            url_changed = spec.url != self._spec.url
            self._spec = spec
            self._rule_states = [RuleState(r) for r in spec.rules]
            if url_changed:
                self.live = spec.scheme != "file"
                self._reopen.set()
                self._wakeup.set()
        return url_changed

    def needs_restart(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    # -------------------------------------------------------------- detail

    def detail(self) -> dict[str, Any]:
        now = time.time()
        mono = time.monotonic()
        with self._lock:
            while self._analysed_at and self._analysed_at[0] < mono - FPS_WINDOW_S:
                self._analysed_at.popleft()
            window = min(FPS_WINDOW_S, max(1e-3, now - self.created))
            fps = len(self._analysed_at) / window if self.status == RUNNING else 0.0
            return {
                "TaskID": self.task_id,
                "Status": self.status,
                "Reason": self.reason,
                "Stats": {
                    "FramesDecoded": self.frames_decoded,
                    "FramesAnalysed": self.frames_analysed,
                    "Fps": round(fps, 2),
                    "LastFrameAgeMs": None
                    if self.last_frame_at is None
                    else round((now - self.last_frame_at) * 1000),
                    "Reconnects": self.reconnects,
                    "Events": self.events,
                    "DecodeErrors": self.decode_errors,
                    "AnalysisSkipped": self._slot.replaced,
                },
                "Live": self.live,
                "TaskInfo": self._spec.task_info,
            }

    # ------------------------------------------------------------ internals

    def _set(self, status: str, reason: str) -> None:
        with self._lock:
            if (status, reason) != (self.status, self.reason):
                log.info("task %s: %s %s", self.task_id, status, reason)
            self.status, self.reason = status, reason

    def _alive(self) -> bool:
        return not self._stop.is_set()

    def _sleep(self, seconds: float) -> None:
        """Sleep, waking early for stop/pause/resume/update."""
        self._wakeup.wait(timeout=max(0.0, seconds))
        self._wakeup.clear()

    def _decode_main(self) -> None:
        try:
            self._decode_loop()
        except Exception as exc:  # a bug: make it visible, never die silently
            log.exception("task %s: decode thread failed", self.task_id)
            self._set(ERROR, f"engine error: {type(exc).__name__}: {exc}")
        finally:
            self._stop.set()
            self._slot.wake()

    def _decode_loop(self) -> None:
        backoff = 0.5
        failed = False  # the last attempt failed: the next open is a reconnect
        while not self._stop.is_set():
            if self._paused.is_set():
                self._set(PAUSED, "")
                self._sleep(1.0)
                continue
            self._reopen.clear()
            spec = self.spec
            if failed:
                with self._lock:
                    self.reconnects += 1
            try:
                container = open_source(spec.url, self.config)
            except Exception as exc:
                reason = reason_for(exc, opening=True)
                if spec.scheme == "file":
                    self._set(ERROR, reason)
                    return
                self._set(ERROR, reason)
                failed = True
                self._sleep(backoff)
                backoff = min(backoff * 2, self.config.reconnect_max_s)
                continue
            live = is_live(spec.url, container)
            with self._lock:
                self.live = live
            try:
                outcome = self._pump(container, live)
            except Exception as exc:
                outcome = reason_for(exc, opening=False)
            finally:
                with contextlib.suppress(Exception):  # closing a broken stream
                    container.close()
            if outcome in ("stop", "reopen", "pause"):
                failed = False
                backoff = 0.5
                continue
            if outcome == "eof" and not live:
                self._slot.drain(self._alive)
                if self._reopen.is_set():
                    continue
                self._set(FINISHED, "")
                return
            if outcome == "eof":
                outcome = "stream ended"
            if self.status == RUNNING:
                backoff = 0.5
            if not live:
                self._slot.drain(self._alive)
                self._set(ERROR, outcome)
                return
            self._set(ERROR, outcome)
            failed = True
            self._sleep(backoff)
            backoff = min(backoff * 2, self.config.reconnect_max_s)

    def _pump(self, container: Any, live: bool) -> str:
        """Decode until the source ends or the task must stop; returns
        'eof', 'stop', 'reopen', 'pause' or raises."""
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        speed = self.config.file_speed
        interval = 1.0 / self.config.analysis_fps
        wait_for_analysis = not live and speed == 0
        rate = float(stream.average_rate or 25)
        t0: float | None = None
        anchor = time.time()
        next_t: float | None = None
        count = 0
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except (ValueError, OSError) as exc:
                if isinstance(exc, (ConnectionError, TimeoutError)):
                    raise
                with self._lock:
                    self.decode_errors += 1
                continue
            for frame in frames:
                if self._stop.is_set():
                    return "stop"
                if self._reopen.is_set():
                    return "reopen"
                count += 1
                media_t = frame.time if frame.time is not None else count / rate
                if t0 is None:
                    t0 = media_t
                    anchor = time.time()
                if self._paused.is_set():
                    if live:
                        self._set(PAUSED, "")
                        return "pause"
                    paused_at = time.time()
                    self._set(PAUSED, "")
                    while self._paused.is_set() and not self._stop.is_set():
                        if self._reopen.is_set():
                            return "reopen"
                        self._sleep(1.0)
                    anchor += time.time() - paused_at
                if not live and speed > 0:
                    due = anchor + (media_t - t0) / speed
                    while (delay := due - time.time()) > 0 and not self._stop.is_set():
                        self._sleep(min(delay, 0.5))
                        if self._paused.is_set() or self._reopen.is_set():
                            break
                now = time.time()
                frame_t = now if live else anchor + (media_t - t0)
                with self._lock:
                    self.frames_decoded += 1
                    self.last_frame_at = now
                    if self.status != RUNNING and not self._paused.is_set():
                        self._set(RUNNING, "")
                if next_t is None or frame_t >= next_t - 1e-6:
                    if next_t is None or frame_t - next_t >= interval:
                        next_t = frame_t + interval  # first frame, or fell behind
                    else:
                        next_t += interval
                    # the decoded frame itself: converted later, only as far as
                    # the detector (and a snapshot) needs
                    picture = Picture.of_frame(frame)
                    self._slot.put((frame_t, picture), wait=wait_for_analysis, alive=self._alive)
        return "eof"

    def _analysis_main(self) -> None:
        try:
            detector = self.detector_factory()
            while True:
                item = self._slot.get(timeout=0.2)
                if item is None:
                    if self._stop.is_set():
                        return
                    continue
                try:
                    self._analyse(detector, *item)
                finally:
                    self._slot.done()
        except Exception as exc:
            log.exception("task %s: analysis thread failed", self.task_id)
            self._set(ERROR, f"engine error: {type(exc).__name__}: {exc}")
            self._stop.set()

    def _mark_analysed(self, mono: float) -> None:
        with self._lock:
            self.frames_analysed += 1
            self._analysed_at.append(mono)
            # pruned here too, not only when somebody asks for the detail: a task
            # nobody polls must not keep a timestamp per analysed frame forever
            while self._analysed_at[0] < mono - FPS_WINDOW_S:
                self._analysed_at.popleft()

    def _analyse(self, detector: Detector, frame_t: float, picture: Picture) -> None:
        with self._lock:
            spec, states = self._spec, self._rule_states
        detections = detector.detect(picture, spec.min_confidence)
        alarms = [a for st in states for a in st.update(frame_t, detections)]
        self._mark_analysed(time.monotonic())
        for alarm in alarms:
            if self._stop.is_set():
                return
            event = build_event(
                self.task_id,
                self.config.engine_id,
                alarm,
                picture.bgr(),
                max_width=self.config.snapshot_max_width,
                quality=self.config.snapshot_quality,
            )
            with self._lock:
                self.events += 1
            self.sender.submit(event)


__all__ = ["ERROR", "FINISHED", "PAUSED", "PENDING", "RUNNING", "SourceError", "Task"]
