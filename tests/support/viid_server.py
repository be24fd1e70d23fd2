"""A GA/T 1400 view library (视图库) on 127.0.0.1 for the tests: the upper
side of the protocol, strict about what the facility sends.

- `POST /VIID/System/Register`: RFC 2617 digest (MD5, qop=auth) with a 401
  challenge first; the digest is checked (user, realm, nonce it issued, uri =
  the request path, response).
- Every other request: `User-Identify` of a registered 20-digit DeviceID
  (else 401) and `Content-Type: application/VIID+JSON`.
- `/VIID/System/Keepalive`, `/VIID/Persons`, `/VIID/Faces`,
  `/VIID/MotorVehicles`, `/VIID/Images`: the object schemas (required fields,
  48-digit object IDs built from the 41-digit image ID, base64 JPEG that
  decodes to the stated Width/Height).

Answers are `ResponseStatusObject` / `ResponseStatusListObject`; a schema
violation is recorded in `errors` and answered with StatusCode 8 for that
object. `fail_objects(n, code)` refuses the next n objects; `expire()` drops
every registration (the next request gets 401)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np

DIGITS = {n: re.compile(rf"^\d{{{n}}}$") for n in (14, 20, 41, 48)}
KINDS = {
    "/VIID/Persons": ("PersonListObject", "PersonObject", "PersonID", "01"),
    "/VIID/Faces": ("FaceListObject", "FaceObject", "FaceID", "06"),
    "/VIID/MotorVehicles": (
        "MotorVehicleListObject",
        "MotorVehicleObject",
        "MotorVehicleID",
        "02",
    ),
}
BOX = ("LeftTopX", "LeftTopY", "RightBtmX", "RightBtmY")
REQUIRED = {
    "/VIID/Persons": ("InfoKind", "SourceID", "DeviceID", *BOX, "IsDriver", "IsForeigner"),
    "/VIID/Faces": ("InfoKind", "SourceID", "DeviceID", *BOX, "IsDriver", "IsForeigner"),
    "/VIID/MotorVehicles": ("InfoKind", "SourceID", "DeviceID", *BOX, "HasPlate", "PlateNo"),
}
SUB_IMAGE = ("ImageID", "EventSort", "DeviceID", "Type", "FileFormat", "ShotTime", "Width")
IMAGE_INFO = (
    "ImageID",
    "InfoKind",
    "ImageSource",
    "EventSort",
    "DeviceID",
    "FileFormat",
    "ShotTime",
    "Width",
    "Height",
)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _digest_fields(header: str) -> dict[str, str]:
    if not header.lower().startswith("digest "):
        return {}
    return {
        key.lower(): value.strip('"')
        for key, value in re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', header[7:])
    }


def _local_time() -> str:
    return datetime.now().strftime("%Y%m%d%H%M%S")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: dict | None = None, headers: dict | None = None) -> None:
        raw = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/VIID+JSON;charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _status(self, object_id: str, code: Any = 0, text: str = "正常") -> dict:
        return {
            "Id": object_id,
            "RequestURL": self.path,
            "StatusCode": code,
            "StatusString": text,
            "LocalTime": _local_time(),
        }

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        server = self.server
        record = {"path": self.path, "headers": dict(self.headers.items()), "raw": raw}
        with server.lock:
            server.requests.append(record)
        try:
            body = json.loads(raw)
        except ValueError:
            server.error(f"{self.path}: body is not JSON")
            self._answer(400)
            return
        record["body"] = body
        content_type = self.headers.get("Content-Type", "")
        if not content_type.lower().startswith("application/viid+json"):
            server.error(f"{self.path}: Content-Type {content_type!r}")
        device_id = self.headers.get("User-Identify", "")
        if not DIGITS[20].match(device_id):
            server.error(f"{self.path}: User-Identify {device_id!r}")
        if self.path == "/VIID/System/Register":
            self._register(body, device_id)
            return
        with server.lock:
            registered = device_id in server.registered
        if not registered:
            with server.lock:
                server.unauthorized += 1
            self._answer(401, {"ResponseStatusObject": self._status(device_id, 4, "未注册")})
            return
        if self.path == "/VIID/System/Keepalive":
            with server.lock:
                server.keepalives += 1
            if (body.get("KeepaliveObject") or {}).get("DeviceID") != device_id:
                server.error("keepalive: KeepaliveObject.DeviceID is not the User-Identify")
            self._answer(200, {"ResponseStatusObject": self._status(device_id, "0")})
            return
        if self.path in KINDS:
            self._objects(body, device_id)
        elif self.path == "/VIID/Images":
            self._images(body, device_id)
        else:
            self._answer(404)

    def _register(self, body: dict, device_id: str) -> None:
        server = self.server
        if (body.get("RegisterObject") or {}).get("DeviceID") != device_id:
            server.error("register: RegisterObject.DeviceID is not the User-Identify")
        fields = _digest_fields(self.headers.get("Authorization", ""))
        valid = False
        if fields:
            with server.lock:
                nonce_known = fields.get("nonce") in server.nonces
            ha1 = _md5(f"{server.username}:{server.realm}:{server.password}")
            ha2 = _md5(f"POST:{fields.get('uri', '')}")
            expected = _md5(
                f"{ha1}:{fields.get('nonce')}:{fields.get('nc')}:{fields.get('cnonce')}:"
                f"{fields.get('qop')}:{ha2}"
            )
            if fields.get("uri") != self.path:
                server.error(f"register: digest uri {fields.get('uri')!r} is not the path")
            valid = (
                nonce_known
                and fields.get("username") == server.username
                and fields.get("realm") == server.realm
                and fields.get("qop") == "auth"
                and fields.get("response") == expected
            )
        if not valid:
            nonce = secrets.token_hex(8)
            with server.lock:
                server.nonces.add(nonce)
                server.challenges += 1
            challenge = f'Digest realm="{server.realm}", qop="auth", nonce="{nonce}", algorithm=MD5'
            self._answer(401, None, {"WWW-Authenticate": challenge})
            return
        with server.lock:
            server.registered.add(device_id)
            server.registrations += 1
        self._answer(200, {"ResponseStatusObject": self._status(device_id, "0")})

    def _take_failure(self) -> int | None:
        with self.server.lock:
            if self.server.failures > 0:
                self.server.failures -= 1
                return self.server.failure_code
        return None

    def _objects(self, body: dict, device_id: str) -> None:
        wrapper, name, id_field, type_code = KINDS[self.path]
        try:
            objects = body[wrapper][name]
            assert isinstance(objects, list) and objects
        except (KeyError, TypeError, AssertionError):
            self.server.error(f"{self.path}: no {wrapper}.{name}[]")
            self._answer(400)
            return
        statuses = []
        for item in objects:
            object_id = str(item.get(id_field, ""))
            problems = self.server.check_object(self.path, item, device_id, id_field, type_code)
            if problems:
                self.server.error(*problems)
                statuses.append(self._status(object_id, 8, "; ".join(problems)))
                continue
            code = self._take_failure()
            if code is not None:
                statuses.append(self._status(object_id, code, "refused for the test"))
                continue
            with self.server.lock:
                self.server.objects.setdefault(self.path, []).append(item)
            statuses.append(self._status(object_id, 0))
        self._answer(200, {"ResponseStatusListObject": {"ResponseStatusObject": statuses}})

    def _images(self, body: dict, device_id: str) -> None:
        try:
            images = body["ImageListObject"]["Image"]
            assert isinstance(images, list) and images
        except (KeyError, TypeError, AssertionError):
            self.server.error("/VIID/Images: no ImageListObject.Image[]")
            self._answer(400)
            return
        statuses = []
        for image in images:
            info = image.get("ImageInfo") or {}
            image_id = str(info.get("ImageID", ""))
            problems = [
                f"/VIID/Images: ImageInfo.{key} missing" for key in IMAGE_INFO if key not in info
            ]
            problems += self.server.check_image_id(image_id, device_id, "/VIID/Images")
            if "Data" in image:
                problems += self.server.check_jpeg(image["Data"], info, "/VIID/Images")
            if problems:
                self.server.error(*problems)
                statuses.append(self._status(image_id, 8, "; ".join(problems)))
                continue
            code = self._take_failure()
            if code is not None:
                statuses.append(self._status(image_id, code, "refused for the test"))
                continue
            with self.server.lock:
                self.server.objects.setdefault("/VIID/Images", []).append(image)
            statuses.append(self._status(image_id, 0))
        self._answer(200, {"ResponseStatusListObject": {"ResponseStatusObject": statuses}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    lock: threading.Lock
    username: str
    password: str
    realm: str
    nonces: set[str]
    registered: set[str]
    requests: list[dict[str, Any]]
    objects: dict[str, list[dict[str, Any]]]
    errors: list[str]
    failures: int
    failure_code: int
    challenges: int
    registrations: int
    keepalives: int
    unauthorized: int

    def error(self, *problems: str) -> None:
        with self.lock:
            self.errors.extend(problems)

    def check_image_id(self, image_id: str, device_id: str, where: str) -> list[str]:
        """41 digits: DeviceID(20) + "02" (image) + time(14) + sequence(5)."""
        if not DIGITS[41].match(image_id):
            return [f"{where}: image ID {image_id!r} is not 41 digits"]
        problems = []
        if image_id[:20] != device_id:
            problems.append(f"{where}: image ID {image_id} does not start with the DeviceID")
        if image_id[20:22] != "02":
            problems.append(f"{where}: image ID {image_id} type is not 02")
        try:
            datetime.strptime(image_id[22:36], "%Y%m%d%H%M%S")
        except ValueError:
            problems.append(f"{where}: image ID {image_id} has no time")
        return problems

    def check_jpeg(self, data: Any, info: dict, where: str) -> list[str]:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError, TypeError):
            return [f"{where}: Data is not base64"]
        picture = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        if raw[:2] != b"\xff\xd8" or picture is None:
            return [f"{where}: Data is not a JPEG"]
        height, width = picture.shape[:2]
        if (info.get("Width"), info.get("Height")) != (width, height):
            return [f"{where}: Width/Height {info.get('Width')}x{info.get('Height')} != JPEG"]
        if info.get("FileFormat") != "Jpeg":
            return [f"{where}: FileFormat {info.get('FileFormat')!r}"]
        return []

    def check_object(
        self, path: str, item: dict, device_id: str, id_field: str, type_code: str
    ) -> list[str]:
        problems = [
            f"{path}: {key} missing" for key in (id_field, *REQUIRED[path]) if key not in item
        ]
        if problems:
            return problems
        object_id, source_id = str(item[id_field]), str(item["SourceID"])
        problems += self.check_image_id(source_id, device_id, path)
        if not DIGITS[48].match(object_id):
            problems.append(f"{path}: {id_field} {object_id!r} is not 48 digits")
        elif object_id[:41] != source_id or object_id[41:43] != type_code:
            problems.append(f"{path}: {id_field} {object_id} is not SourceID + {type_code} + seq")
        if item["DeviceID"] != device_id:
            problems.append(f"{path}: DeviceID {item['DeviceID']!r}")
        if not all(isinstance(item[key], int) for key in BOX):
            problems.append(f"{path}: box not in whole pixels")
        elif item["LeftTopX"] > item["RightBtmX"] or item["LeftTopY"] > item["RightBtmY"]:
            problems.append(f"{path}: box corners out of order")
        for sub in (item.get("SubImageList") or {}).get("SubImageInfoObject", []):
            problems += [
                f"{path}: SubImageInfoObject.{k} missing" for k in SUB_IMAGE if k not in sub
            ]
            problems += self.check_image_id(str(sub.get("ImageID", "")), device_id, path)
            problems += self.check_jpeg(sub.get("Data"), sub, path)
        return problems


class ViewLibraryServer:
    def __init__(
        self, username: str = "facility", password: str = "s3cret", realm: str = "viid-test"
    ) -> None:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.lock = threading.Lock()
        server.username, server.password, server.realm = username, password, realm
        server.nonces, server.registered = set(), set()
        server.requests, server.objects, server.errors = [], {}, []
        server.failures, server.failure_code = 0, 1
        server.challenges = server.registrations = server.keepalives = server.unauthorized = 0
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def viid_url(self, device_id: str, password: str | None = None) -> str:
        port = self._server.server_address[1]
        secret = self._server.password if password is None else password
        return f"viid://{self._server.username}:{secret}@127.0.0.1:{port}/?DeviceID={device_id}"

    def fail_objects(self, count: int, code: int = 1) -> None:
        with self._server.lock:
            self._server.failures, self._server.failure_code = count, code

    def expire(self) -> None:
        """Every registration lapses: the next request is answered 401."""
        with self._server.lock:
            self._server.registered.clear()

    def objects(self, path: str) -> list[dict[str, Any]]:
        with self._server.lock:
            return list(self._server.objects.get(path, []))

    def posts(self, path: str) -> list[dict[str, Any]]:
        with self._server.lock:
            return [r for r in self._server.requests if r["path"] == path]

    def __getattr__(self, name: str) -> Any:
        if name in ("errors", "registered", "challenges", "registrations", "keepalives"):
            with self._server.lock:
                value = getattr(self._server, name)
                return type(value)(value) if isinstance(value, (list, set)) else value
        if name == "unauthorized":
            return self._server.unauthorized
        raise AttributeError(name)

    def wait_for(self, predicate: Any, timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "view library: timed out"
            time.sleep(0.02)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
