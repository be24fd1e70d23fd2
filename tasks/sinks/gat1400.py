"""GA/T 1400-2017 output: task events delivered to a view library (视图库).

The facility is the lower-level (下级) side: it registers with digest
authentication (`POST /VIID/System/Register`, re-registered whenever the
view library answers 401), keeps the registration alive
(`POST /VIID/System/Keepalive` every GAT1400_KEEPALIVE_S, from the delivery
path and from `keep_alive()`, a loop) and posts each event as GA/T 1400
objects: persons to `/VIID/Persons`, faces to `/VIID/Faces`, vehicles to
`/VIID/MotorVehicles`, anything else to `/VIID/Images`, with the scene snapshot
in `SubImageList.SubImageInfoObject`. A delivery succeeds only when every
object's StatusCode in the `ResponseStatusListObject` is 0; otherwise the
durable delivery loop (tasks.jobs) retries it with the same object IDs.

Targets (Delivery.target):
- `viid:settings` — the view library of the settings (GAT1400_URL, …);
- `viid://user:pass@host:port[/prefix]/?DeviceID=<20 digits>` — a task's own
  (`viids://` for HTTPS); DeviceID defaults to GAT1400_DEVICE_ID.

docs/gat1400.md describes what is sent."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import requests
from django.conf import settings
from django.utils import timezone
from requests.auth import HTTPDigestAuth

from facility.netpolicy import check_url_resolved
from tasks.models import TaskEvent, ViewLibrary
from tasks.sinks import SendResult

log = logging.getLogger(__name__)

SCHEMES = ("viid", "viids")
SETTINGS_TARGET = "viid:settings"
SETTINGS_KEY = "settings"
CONTENT_TYPE = "application/VIID+JSON;charset=UTF-8"
DEVICE_ID = re.compile(r"^\d{20}$")

# object kinds: (path, list wrapper, object name, ID field, GA/T 1400.1 type code:
# the sub-type of a semantic object, ID positions 42-43; 01 person, 02 motor
# vehicle, 03 non-motor vehicle, 04 article, 05 scene, 06 face, 07 label, 99 other)
PERSON = ("/VIID/Persons", "PersonListObject", "PersonObject", "PersonID", "01")
MOTOR_VEHICLE = (
    "/VIID/MotorVehicles",
    "MotorVehicleListObject",
    "MotorVehicleObject",
    "MotorVehicleID",
    "02",
)
FACE = ("/VIID/Faces", "FaceListObject", "FaceObject", "FaceID", "06")
KINDS = (PERSON, FACE, MOTOR_VEHICLE)
IMAGES_PATH = "/VIID/Images"

# an engine's Objects[].Type (lower case) → kind
TYPE_KINDS = {
    "person": PERSON,
    "pedestrian": PERSON,
    "human": PERSON,
    "face": FACE,
    "vehicle": MOTOR_VEHICLE,
    "motor_vehicle": MOTOR_VEHICLE,
    "motorvehicle": MOTOR_VEHICLE,
    "car": MOTOR_VEHICLE,
    "truck": MOTOR_VEHICLE,
    "bus": MOTOR_VEHICLE,
    "van": MOTOR_VEHICLE,
    "motorcycle": MOTOR_VEHICLE,
}
SCENE_IMAGE_TYPE = "14"  # 场景图
INFO_KIND_AUTOMATIC = 1  # 自动采集
UNKNOWN_FLAG = 2  # the Is… flags: not determined
OTHER = "99"


@dataclass(frozen=True)
class Library:
    key: str
    target: str
    base_url: str
    username: str
    password: str
    device_id: str


def is_viid(target: str) -> bool:
    return target == SETTINGS_TARGET or target.split("://", 1)[0].lower() in SCHEMES


def library_for(target: str) -> Library:
    """The view library a delivery target names; ValueError when it is unusable."""
    if target == SETTINGS_TARGET:
        if not settings.GAT1400_URL:
            raise ValueError("FACILITY_GAT1400_URL is not set")
        device_id = settings.GAT1400_DEVICE_ID
        if not DEVICE_ID.match(device_id):
            raise ValueError("FACILITY_GAT1400_DEVICE_ID must be 20 digits")
        return Library(
            SETTINGS_KEY,
            target,
            settings.GAT1400_URL.rstrip("/"),
            settings.GAT1400_USERNAME,
            settings.GAT1400_PASSWORD,
            device_id,
        )
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise ValueError("must be a viid:// or viids:// URL")
    if not parts.hostname:
        raise ValueError("names no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("has a bad port") from None
    query = {k.lower(): v[-1] for k, v in parse_qs(parts.query).items()}
    device_id = query.get("deviceid", settings.GAT1400_DEVICE_ID)
    if not DEVICE_ID.match(device_id):
        raise ValueError("needs DeviceID=<20 digits> (or FACILITY_GAT1400_DEVICE_ID)")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = f"{host}:{port}" if port else host
    base = f"{'https' if scheme == 'viids' else 'http'}://{netloc}{parts.path.rstrip('/')}"
    username = unquote(parts.username or "")
    key = f"{quote(username)}@{netloc}{parts.path.rstrip('/')}/{device_id}"
    return Library(key, target, base, username, unquote(parts.password or ""), device_id)


# --- the documents ------------------------------------------------------------


def _time(event_ms: Any) -> str:
    """YYYYMMDDhhmmss in the facility's time zone (GA/T 1400 times are local)."""
    try:
        when = datetime.fromtimestamp(float(event_ms) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        when = timezone.now()
    return timezone.localtime(when).strftime("%Y%m%d%H%M%S")


def _sequence(event_key: str) -> int:
    """The 5-digit sequence of an event's IDs: its row number, so that a retry
    sends the same IDs and two events of one second differ."""
    pk = TaskEvent.objects.filter(event_key=event_key).values_list("pk", flat=True).first()
    if pk is None:
        pk = int(hashlib.sha1(event_key.encode()).hexdigest(), 16)
    return int(pk) % 100000


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's SOF marker, None when it is not a JPEG."""
    if data[:2] != b"\xff\xd8":
        return None
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7 or marker == 0xFF:
            i += 1 if marker == 0xFF else 2
            continue
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
            height = int.from_bytes(data[i + 5 : i + 7], "big")
            width = int.from_bytes(data[i + 7 : i + 9], "big")
            return width, height
        i += 2 + length
    return None


def _box(item: dict[str, Any], width: int, height: int) -> dict[str, int]:
    box = item.get("Box")
    if not isinstance(box, dict):
        box = {}

    def coord(key: str) -> float:
        value = box.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return 0.0
        return float(value) if math.isfinite(value) else 0.0

    x, y, w, h = coord("X"), coord("Y"), coord("W"), coord("H")

    def px(value: float, size: int) -> int:
        return max(0, min(size, round(value * size)))

    return {
        "LeftTopX": px(x, width),
        "LeftTopY": px(y, height),
        "RightBtmX": px(x + w, width),
        "RightBtmY": px(y + h, height),
    }


def _passed_through(item: dict[str, Any]) -> dict[str, Any]:
    """GA/T 1400 attributes an engine put on an object (e.g. PlateNo,
    GenderCode): capitalised scalar keys other than the event's own."""
    return {
        key: value
        for key, value in item.items()
        if key[:1].isupper()
        and key not in ("Type", "Confidence", "Box")
        and isinstance(value, (str, int, float))
        and not isinstance(value, bool)
    }


def build_requests(
    document: dict[str, Any], event_key: str, device_id: str
) -> list[tuple[str, dict[str, Any], list[str]]]:
    """The (path, body, object IDs) to post for one event document."""
    shot = _time(document.get("EventTime"))
    sequence = _sequence(event_key)
    source_id = f"{device_id}02{shot}{sequence:05d}"  # image ID: 41 digits
    data = b""
    snapshot = document.get("Snapshot") or ""
    if isinstance(snapshot, str) and snapshot:
        try:
            data = base64.b64decode(snapshot, validate=True)
        except (binascii.Error, ValueError):
            data = b""
    size = jpeg_size(data) if data else None
    width = document.get("Width") if isinstance(document.get("Width"), int) else 0
    height = document.get("Height") if isinstance(document.get("Height"), int) else 0
    if size and (not width or not height):
        width, height = size
    width, height = int(width or 0), int(height or 0)
    event_sort = document.get("EventSort", int(OTHER))
    sub_images: dict[str, Any] = {}
    if data:
        sub_images = {
            "SubImageList": {
                "SubImageInfoObject": [
                    {
                        "ImageID": source_id,
                        "EventSort": event_sort,
                        "DeviceID": device_id,
                        "StoragePath": "",
                        "Type": SCENE_IMAGE_TYPE,
                        "FileFormat": "Jpeg",
                        "ShotTime": shot,
                        "Width": width,
                        "Height": height,
                        "Data": base64.b64encode(data).decode(),
                    }
                ]
            }
        }
    grouped: dict[str, list[dict[str, Any]]] = {}
    unrecognised = 0
    items = [item for item in document.get("Objects") or [] if isinstance(item, dict)]
    for index, item in enumerate(items, start=1):
        kind = TYPE_KINDS.get(str(item.get("Type", "")).lower())
        if kind is None:
            unrecognised += 1
            continue
        path, _, _, id_field, type_code = kind
        common: dict[str, Any] = {
            id_field: f"{source_id}{type_code}{index:05d}",  # 48 digits
            "InfoKind": INFO_KIND_AUTOMATIC,
            "SourceID": source_id,
            "DeviceID": device_id,
            **_box(item, width, height),
        }
        if kind is PERSON:
            specific: dict[str, Any] = {
                "LocationMarkTime": shot,
                "PersonAppearTime": shot,
                "PersonDisAppearTime": shot,
                **_flags(),
            }
        elif kind is FACE:
            specific = {
                "ShotTime": shot,
                "LocationMarkTime": shot,
                "FaceAppearTime": shot,
                "FaceDisAppearTime": shot,
                **_flags(),
            }
        else:
            plate = item.get("PlateNo")
            specific = {
                "StorageUrl1": "",
                "MarkTime": shot,
                "AppearTime": shot,
                "DisappearTime": shot,
                "HasPlate": "1" if plate else "0",
                "PlateClass": OTHER,
                "PlateColor": OTHER,
                "PlateNo": plate or "",
            }
        extra = {k: v for k, v in _passed_through(item).items() if k not in common}
        grouped.setdefault(path, []).append({**common, **specific, **extra, **sub_images})
    out: list[tuple[str, dict[str, Any], list[str]]] = []
    for path, wrapper, name, id_field, _ in KINDS:
        objects = grouped.get(path)
        if objects:
            ids = [obj[id_field] for obj in objects]
            out.append((path, {wrapper: {name: objects}}, ids))
    if unrecognised or not out:
        types = sorted({str(item.get("Type", "")) for item in items if item.get("Type")})
        info: dict[str, Any] = {
            "ImageID": source_id,
            "InfoKind": INFO_KIND_AUTOMATIC,
            "ImageSource": OTHER,
            "EventSort": event_sort,
            "DeviceID": device_id,
            "StoragePath": "",
            "FileFormat": "Jpeg",
            "ShotTime": shot,
            "Title": str(document.get("EventID", ""))[:128],
            "ContentDescription": " ".join(
                [str(document.get("EventID", "")), *types, f"task {document.get('TaskID', '')}"]
            ).strip()[:256],
            "Width": width,
            "Height": height,
        }
        image: dict[str, Any] = {"ImageInfo": info}
        if data:
            image["Data"] = base64.b64encode(data).decode()
        out.append((IMAGES_PATH, {"ImageListObject": {"Image": [image]}}, [source_id]))
    return out


def _flags() -> dict[str, int]:
    return {
        name: UNKNOWN_FLAG
        for name in (
            "IsDriver",
            "IsForeigner",
            "IsSuspectedTerrorist",
            "IsCriminalInvolved",
            "IsDetainees",
            "IsVictim",
            "IsSuspiciousPerson",
        )
    }


# --- the protocol -------------------------------------------------------------


def _status_ok(value: Any) -> bool:
    """StatusCode 0; implementations send it as a number or a string."""
    return str(value).strip() == "0"


class Unauthorized(Exception):
    pass


class Client:
    def __init__(self, library: Library) -> None:
        self.library = library

    def _row(self) -> ViewLibrary:
        row, _ = ViewLibrary.objects.get_or_create(
            key=self.library.key,
            defaults={
                "target": self.library.target,
                "base_url": self.library.base_url,
                "device_id": self.library.device_id,
            },
        )
        return row

    def _mark(self, **fields: Any) -> None:
        fields.setdefault("updated_at", timezone.now())
        fields.setdefault("target", self.library.target)
        fields.setdefault("base_url", self.library.base_url)
        ViewLibrary.objects.filter(key=self.library.key).update(**fields)

    def _post(self, path: str, body: dict[str, Any], digest: bool = False) -> requests.Response:
        """POST to the view library; PermissionError when the network policy
        (facility/netpolicy.py) does not allow its address."""
        url = self.library.base_url + path
        check_url_resolved(url)
        return requests.post(
            url,
            data=json.dumps(body, ensure_ascii=False).encode(),
            headers={
                "Content-Type": CONTENT_TYPE,
                "Accept": "application/VIID+JSON, application/json",
                "User-Identify": self.library.device_id,
            },
            auth=HTTPDigestAuth(self.library.username, self.library.password) if digest else None,
            timeout=settings.GAT1400_TIMEOUT_S,
        )

    def _single_status(self, response: requests.Response) -> tuple[bool, str]:
        if response.status_code == 401:
            return False, "HTTP 401"
        if not 200 <= response.status_code < 300:
            return False, f"HTTP {response.status_code}"
        try:
            status = response.json()["ResponseStatusObject"]
        except (ValueError, KeyError, TypeError):
            return False, "no ResponseStatusObject in the answer"
        if not isinstance(status, dict) or not _status_ok(status.get("StatusCode")):
            code = status.get("StatusCode") if isinstance(status, dict) else None
            text = status.get("StatusString", "") if isinstance(status, dict) else ""
            return False, f"StatusCode {code} {text}".strip()
        return True, ""

    def register(self) -> tuple[bool, str]:
        self._row()
        body = {"RegisterObject": {"DeviceID": self.library.device_id}}
        try:
            response = self._post("/VIID/System/Register", body, digest=True)
        except (requests.RequestException, PermissionError) as error:
            message = f"register: {type(error).__name__}: {str(error)[:200]}"
            self._mark(registered=False, last_error=message)
            return False, message
        ok, error_text = self._single_status(response)
        now = timezone.now()
        if ok:
            self._mark(registered=True, registered_at=now, keepalive_at=now, last_error="")
            log.info("registered with view library %s", self.library.key)
            return True, ""
        message = f"register: {error_text}"
        self._mark(registered=False, last_error=message[:512])
        return False, message

    def keepalive(self) -> tuple[bool, str]:
        body = {"KeepaliveObject": {"DeviceID": self.library.device_id}}
        try:
            response = self._post("/VIID/System/Keepalive", body)
        except (requests.RequestException, PermissionError) as error:
            message = f"keepalive: {type(error).__name__}: {str(error)[:200]}"
            self._mark(last_error=message)
            return False, message
        ok, error_text = self._single_status(response)
        if ok:
            self._mark(keepalive_at=timezone.now(), last_error="")
            return True, ""
        # 401 or a refusal: the registration is gone; register again
        message = f"keepalive: {error_text}"
        self._mark(registered=False, last_error=message[:512])
        return False, message

    def ensure_registered(self, slack: float = 0.0) -> tuple[bool, str]:
        """Registered, and kept alive when the interval has passed (or will
        within `slack` of it: the loop ticks at the interval itself)."""
        row = self._row()
        if not row.registered:
            return self.register()
        last = row.keepalive_at or row.registered_at
        interval = float(settings.GAT1400_KEEPALIVE_S)
        due = last is None or (timezone.now() - last).total_seconds() >= interval * (1 - slack)
        if due:
            ok, _ = self.keepalive()
            if not ok:  # expired (401), refused or unreachable: register again
                return self.register()
        return True, ""

    def post_objects(self, path: str, body: dict[str, Any], ids: list[str]) -> tuple[bool, str]:
        for attempt in range(2):
            try:
                response = self._post(path, body)
            except (requests.RequestException, PermissionError) as error:
                return False, f"{path}: {type(error).__name__}: {str(error)[:200]}"
            if response.status_code == 401 and attempt == 0:
                # the registration expired: register again, then send once more
                self._mark(registered=False, last_error=f"{path}: HTTP 401")
                ok, error_text = self.register()
                if not ok:
                    return False, error_text
                continue
            break
        if not 200 <= response.status_code < 300:
            return False, f"{path}: HTTP {response.status_code}"
        return self._check_statuses(path, response, ids)

    @staticmethod
    def _check_statuses(path: str, response: requests.Response, ids: list[str]) -> tuple[bool, str]:
        try:
            statuses = response.json()["ResponseStatusListObject"]["ResponseStatusObject"]
        except (ValueError, KeyError, TypeError):
            return False, f"{path}: no ResponseStatusListObject in the answer"
        if isinstance(statuses, dict):
            statuses = [statuses]
        if not isinstance(statuses, list):
            return False, f"{path}: no ResponseStatusListObject in the answer"
        by_id = {str(s.get("Id", "")): s for s in statuses if isinstance(s, dict)}
        failed = []
        for object_id in ids:
            status = by_id.get(object_id)
            if status is None and len(ids) == 1 and len(by_id) == 1:
                status = next(iter(by_id.values()))  # a lone answer without its Id
            if status is None:
                failed.append(f"{object_id} no status")
            elif not _status_ok(status.get("StatusCode")):
                failed.append(
                    f"{object_id} StatusCode {status.get('StatusCode')} "
                    f"{status.get('StatusString', '')}".strip()
                )
        if failed:
            return False, f"{path}: {len(failed)}/{len(ids)} refused: " + "; ".join(failed)
        return True, ""


class Gat1400Sink:
    def send(self, target: str, document: dict[str, Any], event_key: str) -> SendResult:
        try:
            library = library_for(target)
        except ValueError as problem:
            return SendResult(False, None, f"view library: {problem}")
        client = Client(library)
        ok, error = client.ensure_registered()
        if not ok:
            return SendResult(False, None, error)
        for path, body, ids in build_requests(document, event_key, library.device_id):
            ok, error = client.post_objects(path, body, ids)
            if not ok:
                return SendResult(False, None, error)
        return SendResult(True, 200)


def keep_alive() -> int:
    """Loop entry (facility/loops.py): register the view library of the
    settings, and keep every registered view library alive between events.
    A task's view library that lost its registration is registered again on
    its next delivery. Returns how many are registered."""
    libraries: list[Library] = []
    if settings.GAT1400_URL:
        try:
            libraries.append(library_for(SETTINGS_TARGET))
        except ValueError as problem:
            log.warning("GA/T 1400 view library of the settings: %s", problem)
    for target in (
        ViewLibrary.objects.filter(registered=True)
        .exclude(key=SETTINGS_KEY)
        .values_list("target", flat=True)
    ):
        try:
            libraries.append(library_for(target))
        except ValueError:
            continue
    alive = 0
    for library in libraries:
        ok, error = Client(library).ensure_registered(slack=0.1)
        if ok:
            alive += 1
        else:
            log.warning("GA/T 1400 view library %s: %s", library.key, error)
    return alive
