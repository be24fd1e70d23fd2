"""Single-image analysis: `POST /Images:analyze` (docs/engine-interface.md).

The facility sends one still image (a GA/T 1400 picture, base64 JPEG or PNG)
with the rules of its image intake; the answer, synchronous, holds every
person found and one event per rule and area that has a person in it, each
with a snapshot (area and boxes drawn), in the shape of the video events.

Rule timing (DurationThreshold, RepeatAlarmIntervalThreshold) has no meaning
for one picture and is ignored. At most ENGINE_ANALYZE_QUOTA images are
analysed at once (the package's Analyze_Quota, set by the facility); one more
is answered 503 at once rather than queued, so the facility's retry decides
where it goes next.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
import uuid
import weakref
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from .detector import Detector
from .events import render_snapshot
from .frames import Picture
from .geometry import anchor_point, in_area
from .rules import DEFAULT_MIN_CONFIDENCE, Rule, ValidationError, parse_rule

if TYPE_CHECKING:
    from .server import Engine

MAX_IMAGE_BODY = 32 * 1024 * 1024  # a base64 4K JPEG is a few MB: far above the task body limit
MAX_IMAGE_ID = 128
MAX_PIXELS = 8192 * 8192


class ImageAnalyzer:
    """The image slots of one engine: ENGINE_ANALYZE_QUOTA detectors, each
    used by one request at a time (a HOG descriptor is not shared between
    threads)."""

    def __init__(self, engine: Engine, quota: int) -> None:
        self.engine = engine
        self.quota = quota
        self._free: list[Detector] = []
        self._busy = 0
        self._lock = threading.Lock()
        self.analysed = 0

    def _take(self) -> Detector | None:
        with self._lock:
            if self._busy >= self.quota:
                return None
            self._busy += 1
            if self._free:
                return self._free.pop()
        try:
            return self.engine.detector_factory()
        except Exception:
            with self._lock:
                self._busy -= 1
            raise

    def _give(self, detector: Detector) -> None:
        with self._lock:
            self._busy -= 1
            self._free.append(detector)
            self.analysed += 1

    def analyze(self, body: Any) -> dict[str, Any]:
        from .server import CODE_AT_CAPACITY, CODE_SHUTTING_DOWN, ApiError

        image_id, picture, rules, event_time = _parse(body)
        if self.engine.closing:
            raise ApiError(503, CODE_SHUTTING_DOWN, "engine is shutting down")
        detector = self._take()
        if detector is None:
            raise ApiError(
                503,
                CODE_AT_CAPACITY,
                f"image analysis at capacity: {self.quota} of {self.quota} image slots in use",
            )
        started = time.monotonic()
        try:
            active = [rule.min_confidence for rule in rules if rule.event_id]
            floor = min(active) if active else DEFAULT_MIN_CONFIDENCE
            detections = detector.detect(Picture.of_image(picture), floor)
        finally:
            self._give(detector)
        config = self.engine.config
        height, width = picture.shape[:2]
        events: list[dict[str, Any]] = []
        for rule in rules:
            if not rule.event_id:
                continue
            candidates = [d for d in detections if d.confidence >= rule.min_confidence]
            for area in rule.areas:
                inside = [d for d in candidates if in_area(anchor_point(d.box), area, rule.masks)]
                if not inside:
                    continue
                jpeg = render_snapshot(
                    picture,
                    inside,
                    area.points,
                    config.snapshot_max_width,
                    config.snapshot_quality,
                )
                events.append(
                    {
                        "EventKey": str(uuid.uuid4()),
                        "ImageID": image_id,
                        "EventID": rule.event_id,
                        "AreaID": area.region_id,
                        "RuleIndex": rule.index,
                        "EventTime": event_time,
                        "EngineID": config.engine_id,
                        "Objects": [d.to_json() for d in inside],
                        "Snapshot": base64.b64encode(jpeg).decode("ascii"),
                        "SnapshotFormat": "jpeg",
                        "Width": width,
                        "Height": height,
                    }
                )
        return {
            "ImageID": image_id,
            "Width": width,
            "Height": height,
            "Objects": [d.to_json() for d in detections],
            "Events": events,
            "ElapsedMs": round((time.monotonic() - started) * 1000),
        }


def _invalid(field: str, message: str) -> Exception:
    from .server import invalid

    return invalid(field, message)


def _parse(body: Any) -> tuple[str, np.ndarray, list[Rule], int]:
    if not isinstance(body, dict):
        raise _invalid("body", "must be a JSON object")
    image_id = body.get("ImageID")
    if not isinstance(image_id, str) or not image_id.strip():
        raise _invalid("ImageID", "is required (a non-empty string)")
    if len(image_id) > MAX_IMAGE_ID:
        raise _invalid("ImageID", f"must be at most {MAX_IMAGE_ID} characters")
    data = body.get("Data")
    if not isinstance(data, str) or not data:
        raise _invalid("Data", "is required (the image, base64)")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Data", "must be base64") from None
    picture = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
    if picture is None or picture.size == 0:
        raise _invalid("Data", "is not a JPEG or PNG image the engine can decode")
    if picture.shape[0] * picture.shape[1] > MAX_PIXELS:
        raise _invalid("Data", f"image larger than {MAX_PIXELS} pixels")
    event_time = body.get("EventTime")
    if event_time is None:
        event_time = round(time.time() * 1000)
    elif isinstance(event_time, bool) or not isinstance(event_time, int) or event_time < 0:
        raise _invalid("EventTime", "must be Unix milliseconds")
    info = body.get("TaskInfo") or {}
    if not isinstance(info, dict):
        raise _invalid("TaskInfo", "must be an object")
    key = "RulesParams" if "RulesParams" in info else "RuleParams"
    raw_rules = info.get(key) or []
    if not isinstance(raw_rules, list):
        raise _invalid(f"TaskInfo.{key}", "must be a list")
    try:
        rules = [
            parse_rule(rule, index, f"TaskInfo.{key}[{index}]")
            for index, rule in enumerate(raw_rules)
        ]
    except ValidationError as exc:
        raise _invalid(exc.field, exc.message) from None
    return image_id, picture, rules, event_time


_analyzers: weakref.WeakKeyDictionary[Engine, ImageAnalyzer] = weakref.WeakKeyDictionary()
_analyzers_lock = threading.Lock()


def analyzer_of(engine: Engine) -> ImageAnalyzer:
    with _analyzers_lock:
        analyzer = _analyzers.get(engine)
        if analyzer is None:
            analyzer = ImageAnalyzer(engine, image_quota())
            _analyzers[engine] = analyzer
        return analyzer


def image_quota(env: dict[str, str] | None = None) -> int:
    """ENGINE_ANALYZE_QUOTA: images analysed at once (default 1)."""
    raw = (os.environ if env is None else env).get("ENGINE_ANALYZE_QUOTA", "").strip() or "1"
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def read_body(handler: BaseHTTPRequestHandler) -> Any:
    import json

    from .server import CODE_NOT_JSON, CODE_TOO_LARGE, ApiError

    length = int(handler.headers.get("Content-Length") or 0)
    if length > MAX_IMAGE_BODY:
        raise ApiError(413, CODE_TOO_LARGE, f"request body over {MAX_IMAGE_BODY} bytes")
    raw = handler.rfile.read(length) if length else b""
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, CODE_NOT_JSON, f"request body is not valid JSON: {exc}") from None


def analyze_request(engine: Engine, handler: BaseHTTPRequestHandler) -> dict[str, Any]:
    """The route of `POST /Images:analyze` (server.py)."""
    return analyzer_of(engine).analyze(read_body(handler))
