"""Task bodies (T/BAX 0006.4 表K.2 TaskInfo) parsed into rules, and the rule
timing: DurationThreshold and RepeatAlarmIntervalThreshold over analysed frames.

Pure Python: no video, no detector, so it is unit-tested with synthetic
detections.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .geometry import FULL_FRAME, Region, anchor_point, in_area

SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "file")
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https")

# Sensitivity -> the lowest detection Confidence (0..1) a rule accepts.
SENSITIVITY_LEVELS = {
    "low": 0.88,
    "低": 0.88,
    "medium": 0.73,
    "middle": 0.73,
    "mid": 0.73,
    "中": 0.73,
    "high": 0.5,
    "高": 0.5,
}
DEFAULT_MIN_CONFIDENCE = SENSITIVITY_LEVELS["medium"]
ABSENCE_GRACE_S = 1.0


class ValidationError(Exception):
    """A request body is wrong; ``field`` is the path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Detection:
    """One detected object; box = (X, Y, W, H) normalised to 0..1."""

    box: tuple[float, float, float, float]
    confidence: float
    type: str = "person"

    def to_json(self) -> dict[str, Any]:
        x, y, w, h = self.box
        return {
            "Type": self.type,
            "Confidence": round(self.confidence, 4),
            "Box": {"X": round(x, 5), "Y": round(y, 5), "W": round(w, 5), "H": round(h, 5)},
        }


@dataclass(frozen=True)
class Rule:
    index: int
    event_id: str | None
    areas: tuple[Region, ...]
    masks: tuple[Region, ...]
    duration_s: float = 0.0
    repeat_s: float = 0.0
    min_confidence: float = DEFAULT_MIN_CONFIDENCE


@dataclass(frozen=True)
class TaskSpec:
    url: str
    rules: tuple[Rule, ...]
    task_info: dict[str, Any]

    @property
    def scheme(self) -> str:
        return url_scheme(self.url)

    @property
    def min_confidence(self) -> float:
        active = [r.min_confidence for r in self.rules if r.event_id]
        return min(active) if active else DEFAULT_MIN_CONFIDENCE


def url_scheme(url: str) -> str:
    scheme = urlsplit(url).scheme.lower()
    # "C:\\video.mp4" and plain paths are files
    return scheme if scheme in SCHEMES else "file"


# ---------------------------------------------------------------- parsing


def _number(value: Any, field: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool):
        raise ValidationError(field, "must be a number")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ValidationError(field, "must be a number") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(field, "must be a number")
    if value < minimum:
        raise ValidationError(field, f"must be at least {minimum:g}")
    return float(value)


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValidationError(field, "must be an object")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValidationError(field, "must be a list")
    return value


def parse_sensitivity(value: Any, field: str) -> float:
    """Sensitivity (低/中/高, LOW/MEDIUM/HIGH, or a number 0..1 or 0..100)
    -> minimum Confidence."""
    if value is None or value == "":
        return DEFAULT_MIN_CONFIDENCE
    if isinstance(value, str) and value.strip().lower() in SENSITIVITY_LEVELS:
        return SENSITIVITY_LEVELS[value.strip().lower()]
    try:
        s = _number(value, field)
    except ValidationError:
        raise ValidationError(
            field, "must be 低/中/高, LOW/MEDIUM/HIGH or a number from 0 to 1 (or 0 to 100)"
        ) from None
    if s > 1:
        if s > 100:
            raise ValidationError(field, "must be a number from 0 to 1 (or 0 to 100)")
        s /= 100.0
    return 0.95 - 0.45 * s


def _region(value: Any, field: str) -> Region:
    obj = _object(value, field)
    kind = str(obj.get("AreaType") or "POLYGON").upper()
    if kind not in ("POLYGON", "RECT", "RECTANGLE"):
        raise ValidationError(f"{field}.AreaType", "must be POLYGON (or RECT)")
    raw_points = _list(obj.get("Points"), f"{field}.Points")
    points: list[tuple[float, float]] = []
    for i, p in enumerate(raw_points):
        pf = f"{field}.Points[{i}]"
        p = _object(p, pf)
        coords = []
        for name in ("PointX", "PointY"):
            if name not in p:
                raise ValidationError(f"{pf}.{name}", "is required")
            v = _number(p[name], f"{pf}.{name}")
            if v > 1:
                raise ValidationError(f"{pf}.{name}", "must be between 0 and 1 (normalised)")
            coords.append(v)
        points.append((coords[0], coords[1]))
    if kind != "POLYGON":
        if len(points) != 2:
            raise ValidationError(f"{field}.Points", "a RECT needs exactly 2 points")
        (x1, y1), (x2, y2) = points
        points = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    if len(points) < 3:
        raise ValidationError(f"{field}.Points", "a POLYGON needs at least 3 points")
    return Region(region_id=obj.get("AreaID", obj.get("MaskID")), points=tuple(points))


def parse_rule(value: Any, index: int, field: str) -> Rule:
    obj = _object(value, field)
    event_id = obj.get("EventID")
    if event_id is not None and not isinstance(event_id, str):
        raise ValidationError(f"{field}.EventID", "must be a string")
    areas = tuple(
        _region(a, f"{field}.Areas[{i}]")
        for i, a in enumerate(_list(obj.get("Areas") or [], f"{field}.Areas"))
    )
    masks = tuple(
        _region(m, f"{field}.Masks[{i}]")
        for i, m in enumerate(_list(obj.get("Masks") or [], f"{field}.Masks"))
    )
    ext = _object(obj.get("ExtendParams") or {}, f"{field}.ExtendParams")
    ef = f"{field}.ExtendParams"
    duration = ext.get("DurationThreshold")
    repeat = ext.get("RepeatAlarmIntervalThreshold")
    return Rule(
        index=index,
        event_id=event_id or None,
        areas=areas or (FULL_FRAME,),
        masks=masks,
        duration_s=0.0 if duration in (None, "") else _number(duration, f"{ef}.DurationThreshold"),
        repeat_s=0.0
        if repeat in (None, "")
        else _number(repeat, f"{ef}.RepeatAlarmIntervalThreshold"),
        min_confidence=parse_sensitivity(ext.get("Sensitivity"), f"{ef}.Sensitivity"),
    )


def parse_task_info(value: Any, field: str = "TaskInfo") -> TaskSpec:
    info = _object(value, field)
    so = _object(info.get("StreamOptions"), f"{field}.StreamOptions")
    vso = _object(so.get("VideoStreamOptions"), f"{field}.StreamOptions.VideoStreamOptions")
    url_field = f"{field}.StreamOptions.VideoStreamOptions.Url"
    url = vso.get("Url")
    if not isinstance(url, str) or not url.strip():
        raise ValidationError(url_field, "is required (rtsp://, rtmp://, http(s)://, file path)")
    url = url.strip()
    scheme = urlsplit(url).scheme.lower()
    if scheme and len(scheme) > 1 and scheme not in SCHEMES:
        raise ValidationError(
            url_field, f"scheme {scheme!r} is not supported (use {', '.join(SCHEMES)})"
        )
    key = "RulesParams" if "RulesParams" in info else "RuleParams"
    raw_rules = _list(info.get(key), f"{field}.RulesParams")
    rules = tuple(parse_rule(r, i, f"{field}.{key}[{i}]") for i, r in enumerate(raw_rules))
    return TaskSpec(url=url, rules=rules, task_info=info)


# ----------------------------------------------------------------- timing


@dataclass(frozen=True)
class Alarm:
    rule: Rule
    area: Region
    time: float
    objects: tuple[Detection, ...]


@dataclass
class _AreaState:
    since: float | None = None
    last_seen: float | None = None
    fired: bool = False


@dataclass
class RuleState:
    """Decides, frame by frame, when a rule raises an event.

    An area is *occupied* while at least one person whose bottom-centre point
    lies inside it (and in no Mask) is detected with enough confidence. Gaps up
    to ``grace_s`` (missed detections) do not end an occupation. An event is
    raised once an occupation has lasted DurationThreshold seconds. The rule
    then stays silent for RepeatAlarmIntervalThreshold seconds (across all its
    areas); with a repeat interval > 0 a continuing occupation raises again
    every interval, with 0 only a new occupation raises again.
    """

    rule: Rule
    grace_s: float = ABSENCE_GRACE_S
    last_alarm: float | None = None
    areas: list[_AreaState] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.areas = [_AreaState() for _ in self.rule.areas]

    def update(self, t: float, detections: Sequence[Detection]) -> list[Alarm]:
        rule = self.rule
        if not rule.event_id:
            return []
        alarms: list[Alarm] = []
        candidates = [d for d in detections if d.confidence >= rule.min_confidence]
        for area, st in zip(rule.areas, self.areas, strict=True):
            inside = tuple(d for d in candidates if in_area(anchor_point(d.box), area, rule.masks))
            if not inside:
                if st.last_seen is not None and t - st.last_seen > self.grace_s:
                    st.since, st.last_seen, st.fired = None, None, False
                continue
            if st.since is None:
                st.since, st.fired = t, False
            st.last_seen = t
            if t - st.since + 1e-6 < rule.duration_s:
                continue
            quiet = self.last_alarm is None or t - self.last_alarm + 1e-6 >= rule.repeat_s
            due = not st.fired or rule.repeat_s > 0
            if quiet and due:
                st.fired = True
                self.last_alarm = t
                alarms.append(Alarm(rule=rule, area=area, time=t, objects=inside))
        return alarms
