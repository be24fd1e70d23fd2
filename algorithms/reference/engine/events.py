"""Events: the JSON body, the snapshot, and delivery to EVENT_SINK_URL.

Delivery never blocks analysis: events go into a bounded queue that one sender
thread drains; when the queue is full the oldest event is dropped and counted.
Each event is POSTed up to ``attempts`` times with a short backoff; 4xx answers
other than 408/429 are final.
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import cv2
import numpy as np

from .rules import Alarm, Detection

log = logging.getLogger("engine.events")

RING_SIZE = 200


def render_snapshot(
    frame: np.ndarray,
    objects: Sequence[Detection],
    area_points: Sequence[tuple[float, float]] | None,
    max_width: int = 1920,
    quality: int = 85,
) -> bytes:
    """JPEG of the frame with the area outlined (yellow) and boxes drawn (green)."""
    img = frame
    h, w = img.shape[:2]
    if w > max_width:
        k = max_width / w
        img = cv2.resize(img, (max_width, max(1, round(h * k))), interpolation=cv2.INTER_AREA)
        h, w = img.shape[:2]
    else:
        img = img.copy()
    thick = max(2, round(w / 640))
    if area_points:
        pts = np.array([[round(x * w), round(y * h)] for x, y in area_points], dtype=np.int32)
        cv2.polylines(img, [pts], isClosed=True, color=(0, 220, 255), thickness=thick)
    for d in objects:
        x, y, bw, bh = d.box
        p1 = (round(x * w), round(y * h))
        p2 = (round((x + bw) * w), round((y + bh) * h))
        cv2.rectangle(img, p1, p2, (0, 255, 0), thick)
        cv2.putText(
            img,
            f"{d.type} {d.confidence:.2f}",
            (p1[0], max(12, p1[1] - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thick,
            (0, 255, 0),
            max(1, thick // 2),
        )
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def build_event(
    task_id: str,
    engine_id: str,
    alarm: Alarm,
    frame: np.ndarray,
    *,
    max_width: int = 1920,
    quality: int = 85,
) -> dict[str, Any]:
    h, w = frame.shape[:2]
    jpeg = render_snapshot(frame, alarm.objects, alarm.area.points, max_width, quality)
    return {
        "EventKey": str(uuid.uuid4()),
        "TaskID": task_id,
        "EventID": alarm.rule.event_id,
        "AreaID": alarm.area.region_id,
        "RuleIndex": alarm.rule.index,
        "EventTime": round(alarm.time * 1000),
        "EngineID": engine_id,
        "Objects": [d.to_json() for d in alarm.objects],
        "Snapshot": base64.b64encode(jpeg).decode("ascii"),
        "SnapshotFormat": "jpeg",
        "Width": w,
        "Height": h,
    }


class EventSender:
    """Bounded queue + one sender thread. Without a URL events are only kept
    in the in-memory ring (``recent``)."""

    def __init__(
        self,
        url: str,
        token: str = "",
        *,
        queue_size: int = 256,
        attempts: int = 4,
        timeout_s: float = 5.0,
        backoff_s: Sequence[float] = (0.2, 0.5, 1.0, 2.0),
    ) -> None:
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"EVENT_SINK_URL={url!r} must be an http:// or https:// URL")
        self.url = url
        self.token = token
        self.attempts = attempts
        self.timeout_s = timeout_s
        self.backoff_s = tuple(backoff_s) or (0.5,)
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._queue_size = queue_size
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RING_SIZE)
        self.counters = {"Queued": 0, "Sent": 0, "Failed": 0, "Dropped": 0}
        self._thread: threading.Thread | None = None
        if url:
            self._thread = threading.Thread(target=self._run, name="event-sender", daemon=True)
            self._thread.start()

    def submit(self, event: dict[str, Any]) -> None:
        summary = {k: v for k, v in event.items() if k != "Snapshot"}
        summary["SnapshotBytes"] = len(event.get("Snapshot", "")) * 3 // 4
        with self._cond:
            self.recent.append(summary)
            if not self.url:
                return
            if len(self._queue) >= self._queue_size:
                self._queue.popleft()
                self.counters["Dropped"] += 1
            self._queue.append(event)
            self.counters["Queued"] += 1
            self._cond.notify()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {**self.counters, "Pending": len(self._queue), "SinkConfigured": bool(self.url)}

    def close(self, flush_s: float = 2.0) -> None:
        """Stop the sender, giving queued events up to ``flush_s`` to go out."""
        deadline = time.monotonic() + flush_s
        with self._cond:
            while (self._queue or self._busy) and time.monotonic() < deadline:
                self._cond.wait(timeout=0.05)
            self._stop = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout=max(0.1, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                event = self._queue.popleft()
                self._busy = True
            try:
                ok = self._deliver(event)
            finally:
                with self._cond:
                    self._busy = False
                    self.counters["Sent" if ok else "Failed"] += 1
                    self._cond.notify_all()

    def _deliver(self, event: dict[str, Any]) -> bool:
        body = json.dumps(event).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": event["EventKey"],
            "X-Request-ID": event["EventKey"],
        }
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in range(self.attempts):
            if attempt:
                delay = self.backoff_s[min(attempt - 1, len(self.backoff_s) - 1)]
                with self._cond:
                    if self._stop:
                        return False
                    self._cond.wait(timeout=delay)
            # the scheme is checked to be http(s) in __init__
            req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
            try:
                with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310
                    resp.read()
                return True
            except urllib.error.HTTPError as exc:
                log.warning("event %s: sink answered %s", event["EventKey"], exc.code)
                if 400 <= exc.code < 500 and exc.code not in (408, 429):
                    return False
            except (OSError, urllib.error.URLError) as exc:
                log.warning("event %s: sink unreachable: %s", event["EventKey"], exc)
        return False
