"""The facility as a GA/T 1400 receiver of images (docs/gat1400.md "Image
input"): `POST /VIID/Images` (ImageListObject) and
`POST /VIID/SubscribeNotifications` (a notification carrying images), with
RFC 2617 digest authentication (MD5, qop=auth) as FACILITY_VIID_INTAKE_USERNAME.

Each image gets its own ResponseStatusObject (Id = its ImageID); StatusCode 0
means stored and queued for analysis (tasks/images.py). GA/T 1400 shapes live
here only; the work is in tasks.images."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from facility.errors import FacilityError, Invalid
from tasks import images

CONTENT_TYPE = "application/VIID+JSON;charset=UTF-8"
REALM = "facility-viid"
NONCE_TTL_S = 600
MAX_IMAGE_ID = 64
# GA/T 1400 StatusCode values (ResponseStatusObject)
OK, OTHER_ERROR, DEVICE_BUSY, DEVICE_ERROR, INVALID_OPERATION = 0, 1, 2, 3, 4
INVALID_JSON_FORMAT, INVALID_JSON_CONTENT = 7, 8
STATUS_TEXT = {OK: "OK", OTHER_ERROR: "Other Error", DEVICE_ERROR: "Device Error"}
DIGEST_FIELD = re.compile(r'(\w+)=("[^"]*"|[^,\s]+)')


def _local_time() -> str:
    return timezone.localtime().strftime("%Y%m%d%H%M%S")


def _status(request: HttpRequest, object_id: str, code: int, text: str = "") -> dict[str, Any]:
    return {
        "Id": object_id,
        "RequestURL": request.path,
        "StatusCode": code,
        "StatusString": text or STATUS_TEXT.get(code, ""),
        "LocalTime": _local_time(),
    }


def _answer(body: dict[str, Any], status: int = 200, **headers: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(body, ensure_ascii=False).encode(), status=status, content_type=CONTENT_TYPE
    )
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def _single(
    request: HttpRequest, code: int, text: str, status: int, **headers: str
) -> HttpResponse:
    device = request.headers.get("User-Identify", "")
    return _answer(
        {"ResponseStatusObject": _status(request, device, code, text)}, status, **headers
    )


# --- digest authentication (RFC 2617, as GA/T 1400 registration uses it) ------


def _nonce(issued: int | None = None) -> str:
    """Stateless: the issue time and a MAC over it, so any process checks it."""
    stamp = f"{int(time.time()) if issued is None else issued:x}"
    mac = hmac.new(settings.SECRET_KEY.encode(), f"viid-nonce:{stamp}".encode(), hashlib.sha256)
    return f"{stamp}-{mac.hexdigest()[:32]}"


def _nonce_state(nonce: str) -> str:
    """'fresh', 'stale' (ours but expired) or 'bad'."""
    stamp, _sep, _mac = nonce.partition("-")
    try:
        issued = int(stamp, 16)
    except ValueError:
        return "bad"
    if not hmac.compare_digest(_nonce(issued), nonce):
        return "bad"
    return "fresh" if 0 <= time.time() - issued <= NONCE_TTL_S else "stale"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def check_digest(request: HttpRequest) -> str:
    """'' when the request carries a valid digest for the intake user, else
    why not ('stale' when only the nonce expired)."""
    header = request.headers.get("Authorization", "")
    if not header.lower().startswith("digest "):
        return "no digest credentials"
    fields = {k.lower(): v.strip('"') for k, v in DIGEST_FIELD.findall(header[7:])}
    if fields.get("username") != settings.VIID_INTAKE_USERNAME or fields.get("realm") != REALM:
        return "unknown user or realm"
    if fields.get("algorithm", "MD5").upper() != "MD5":
        return "algorithm must be MD5"
    uri = fields.get("uri", "")
    if urlsplit(uri).path != request.path:
        return "digest uri is not the request path"
    state = _nonce_state(fields.get("nonce", ""))
    if state != "fresh":
        return state if state == "stale" else "unknown nonce"
    ha1 = _md5(f"{settings.VIID_INTAKE_USERNAME}:{REALM}:{settings.VIID_INTAKE_PASSWORD}")
    ha2 = _md5(f"{request.method}:{uri}")
    qop = fields.get("qop", "")
    if qop == "auth":
        expected = _md5(
            f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}"
        )
    elif not qop:
        expected = _md5(f"{ha1}:{fields['nonce']}:{ha2}")
    else:
        return "qop must be auth"
    if not hmac.compare_digest(expected, fields.get("response", "")):
        return "wrong password"
    return ""


def _challenge(request: HttpRequest, why: str) -> HttpResponse:
    stale = ", stale=true" if why == "stale" else ""
    header = f'Digest realm="{REALM}", qop="auth", nonce="{_nonce()}", algorithm=MD5{stale}'
    return _single(request, INVALID_OPERATION, _("unauthorized"), 401, WWW_Authenticate=header)


# --- the images of a request ------------------------------------------------------


class BadImage(Exception):
    def __init__(self, image_id: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.image_id, self.field, self.message = image_id, field, message


def _image(item: Any, where: str) -> tuple[str, str, dict[str, Any], bytes]:
    """(ImageID, DeviceID, ImageInfo without Data, the picture) of one Image."""
    if not isinstance(item, dict):
        raise BadImage("", where, _("must be an object"))
    info = item.get("ImageInfo")
    if not isinstance(info, dict):
        raise BadImage("", f"{where}.ImageInfo", _("is required (an object)"))
    image_id = info.get("ImageID")
    if not isinstance(image_id, str) or not image_id.strip():
        raise BadImage("", f"{where}.ImageInfo.ImageID", _("is required"))
    if len(image_id) > MAX_IMAGE_ID:
        raise BadImage(
            image_id[:MAX_IMAGE_ID],
            f"{where}.ImageInfo.ImageID",
            _("must be at most %(n)d characters") % {"n": MAX_IMAGE_ID},
        )
    device_id = info.get("DeviceID", "")
    if not isinstance(device_id, str):
        raise BadImage(image_id, f"{where}.ImageInfo.DeviceID", _("must be a string"))
    data = item.get("Data", info.get("Data"))
    if not isinstance(data, str) or not data:
        raise BadImage(
            image_id,
            f"{where}.Data",
            _("is required (the picture, base64; StoragePath is not fetched)"),
        )
    try:
        picture = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadImage(image_id, f"{where}.Data", _("must be base64")) from None
    kept = {k: v for k, v in info.items() if k != "Data"}
    return image_id, device_id, kept, picture


def _image_lists(body: dict[str, Any]) -> list[tuple[str, Any]]:
    """(where, item) of every Image in a request body, and (NotificationID,
    None) for a notification without images; FacilityError when the body has
    none where it should."""
    if "ImageListObject" in body:
        wrapper = body["ImageListObject"]
        items = wrapper.get("Image") if isinstance(wrapper, dict) else None
        if not isinstance(items, list) or not items:
            raise FacilityError(_("must hold a non-empty list"), field="ImageListObject.Image")
        return [(f"ImageListObject.Image[{i}]", item) for i, item in enumerate(items)]
    if "SubscribeNotificationListObject" in body:
        wrapper = body["SubscribeNotificationListObject"]
        notes = wrapper.get("SubscribeNotificationObject") if isinstance(wrapper, dict) else None
        if not isinstance(notes, list) or not notes:
            raise FacilityError(
                _("must hold a non-empty list"),
                field="SubscribeNotificationListObject.SubscribeNotificationObject",
            )
        found: list[tuple[str, Any]] = []
        for n, note in enumerate(notes):
            base = f"SubscribeNotificationListObject.SubscribeNotificationObject[{n}]"
            if not isinstance(note, dict):
                raise FacilityError(_("must be an object"), field=base)
            # implementations name the list ImageObjectList{ImageObject[]} (like
            # FaceObjectList) or, as in /VIID/Images, ImageListObject{Image[]}
            before = len(found)
            for outer, inner in (("ImageObjectList", "ImageObject"), ("ImageListObject", "Image")):
                wrapped = note.get(outer)
                if isinstance(wrapped, dict) and isinstance(wrapped.get(inner), list):
                    found += [
                        (f"{base}.{outer}.{inner}[{i}]", item)
                        for i, item in enumerate(wrapped[inner])
                    ]
            if len(found) == before:  # faces, persons, …: acknowledged, not analysed
                found.append((str(note.get("NotificationID", "")), None))
        return found
    raise FacilityError(
        _("the body must be an ImageListObject (or a SubscribeNotificationListObject)"),
        field="ImageListObject",
    )


@method_decorator(csrf_exempt, name="dispatch")
class ImageIntakeView(View):
    """POST /VIID/Images and POST /VIID/SubscribeNotifications."""

    http_method_names = ["post"]
    source = "/VIID/Images"

    def post(self, request: HttpRequest) -> HttpResponse:
        if not settings.VIID_INTAKE_USERNAME:
            return _single(request, DEVICE_BUSY, _("image input is off"), 503)
        why = check_digest(request)
        if why:
            return _challenge(request, why)
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.VIID_INTAKE_MAX_BYTES:
            return _single(
                request,
                INVALID_OPERATION,
                _("request larger than %(max)d bytes") % {"max": settings.VIID_INTAKE_MAX_BYTES},
                413,
            )
        try:
            body = json.loads(request.read(length) if length else b"")
        except (ValueError, UnicodeDecodeError) as error:
            text = _("the body is not JSON: %(error)s") % {"error": error}
            return _single(request, INVALID_JSON_FORMAT, text, 400)
        if not isinstance(body, dict):
            return _single(request, INVALID_JSON_CONTENT, _("the body must be a JSON object"), 400)
        try:
            items = _image_lists(body)
        except FacilityError as error:
            return _single(request, INVALID_JSON_CONTENT, str(error), 400)
        statuses = [self._one(request, where, item) for where, item in items]
        return _answer({"ResponseStatusListObject": {"ResponseStatusObject": statuses}})

    def _one(self, request: HttpRequest, where: str, item: Any) -> dict[str, Any]:
        if item is None:
            return _status(request, where, OK, _("no images: nothing to analyse"))
        try:
            image_id, device_id, info, picture = _image(item, where)
        except BadImage as bad:
            return _status(request, bad.image_id, INVALID_JSON_CONTENT, str(bad))
        try:
            images.store_image(
                image_id=image_id, device_id=device_id, info=info, data=picture, source=self.source
            )
        except FacilityError as error:
            field = f"{where}.{error.field}" if error.field else where
            # a bad picture is the sender's; no intake for its device is the facility's setup
            code = INVALID_JSON_CONTENT if isinstance(error, Invalid) else OTHER_ERROR
            return _status(request, image_id, code, f"{field}: {error.message}")
        except OSError as error:  # the disk refused it: the sender keeps the image and retries
            return _status(request, image_id, DEVICE_ERROR, f"not stored: {error}")
        return _status(request, image_id, OK)


class NotificationIntakeView(ImageIntakeView):
    source = "notification"
