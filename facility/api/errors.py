"""One table from failures to (HTTP status, Code, Message).

Project Codes are the HTTP status times 100 plus a detail digit pair, so an
integrator can read the class of failure from the Code alone; the full list is
in docs/api-conventions.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views import defaults
from rest_framework import exceptions as drf
from rest_framework.response import Response

from facility.api.envelope import code_type_of, make_envelope
from facility.api.middleware import request_id_of
from facility.errors import FacilityError

CODE_INVALID = 40000
CODE_NOT_JSON = 40001
CODE_UNAUTHENTICATED = 40100
CODE_FORBIDDEN = 40300
CODE_NOT_FOUND = 40400
CODE_UNKNOWN_URI = 40401
CODE_METHOD = 40500
CODE_TOO_LARGE = 41300
CODE_MEDIA_TYPE = 41500
CODE_THROTTLED = 42900
CODE_INTERNAL = 50000

# field name used by DRF for errors that concern the body as a whole
_BODY = "non_field_errors"


def flatten_errors(detail: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield (field path, message) pairs from DRF's nested error detail."""
    if isinstance(detail, Mapping):
        for key, value in detail.items():
            if isinstance(key, int):  # DRF >= 3.15 keys a list's errors by index
                yield from flatten_errors(value, f"{prefix}[{key}]")
                continue
            name = "" if key in (_BODY, "detail") else str(key)
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            yield from flatten_errors(value, path)
    elif isinstance(detail, list):
        if detail and all(isinstance(item, (Mapping, list)) or item == {} for item in detail):
            for index, item in enumerate(detail):
                if item:
                    yield from flatten_errors(item, f"{prefix}[{index}]")
        else:
            for item in detail:
                yield from flatten_errors(item, prefix)
    else:
        yield prefix, str(detail)


MAX_MESSAGE = 1024  # the standard's limit on Message


def validation_message(detail: Any) -> tuple[str, list[dict[str, str]]]:
    """'Field: rule; Field: rule', cut to the standard's 1024 characters with
    a count of what Data.Errors holds beyond it."""
    pairs = list(flatten_errors(detail))
    parts = [f"{field}: {text}" if field else text for field, text in pairs]
    message = "; ".join(parts)
    if len(message) > MAX_MESSAGE:
        kept: list[str] = []
        for part in parts:
            more = _("; and %(count)d more in Data.Errors") % {"count": len(parts) - len(kept) - 1}
            if len("; ".join([*kept, part])) + len(more) > MAX_MESSAGE:
                break
            kept.append(part)
        rest = len(parts) - len(kept)
        head = "; ".join(kept) if kept else parts[0][: MAX_MESSAGE - 40]
        message = head + _("; and %(count)d more in Data.Errors") % {
            "count": rest - (0 if kept else 1)
        }
    errors = [{"Field": f, "Message": t} for f, t in pairs]
    return message or _("invalid request"), errors


def _classify(exc: Exception) -> tuple[int, int, str, Any] | None:
    if isinstance(exc, FacilityError):
        return exc.http_status, exc.code, str(exc), None
    if isinstance(exc, drf.ValidationError):
        message, errors = validation_message(exc.detail)
        return 400, CODE_INVALID, message, {"Errors": errors}
    if isinstance(exc, drf.ParseError):
        return (
            400,
            CODE_NOT_JSON,
            _("request body is not valid JSON: %(detail)s") % {"detail": exc.detail},
            None,
        )
    if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
        return 401, CODE_UNAUTHENTICATED, str(exc.detail), None
    if isinstance(exc, drf.PermissionDenied):
        return 403, CODE_FORBIDDEN, str(exc.detail), None
    if isinstance(exc, (Http404, drf.NotFound)):
        return 404, CODE_NOT_FOUND, str(exc) or _("not found"), None
    if isinstance(exc, drf.MethodNotAllowed):
        return 405, CODE_METHOD, str(exc.detail), None
    if isinstance(exc, drf.UnsupportedMediaType):
        return (
            415,
            CODE_MEDIA_TYPE,
            f"{exc.detail} " + _("Send a JSON body with Content-Type: application/json."),
            None,
        )
    if isinstance(exc, RequestDataTooBig):
        return 413, CODE_TOO_LARGE, _("request body is larger than this facility accepts"), None
    if isinstance(exc, drf.Throttled):
        return 429, CODE_THROTTLED, str(exc.detail), None
    return None


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    classified = _classify(exc)
    if classified is None:
        return None  # an unexpected error: Django's 500 handler answers (and logs it)
    status, code, message, data = classified
    request = context.get("request")
    rid = request_id_of(request._request) if request is not None else ""
    body = make_envelope(code, message, rid, code_type_of(context.get("view")), data)
    response = Response(body, status=status)
    response.is_envelope = True  # type: ignore[attr-defined]
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="facility"'
    return response


# URIs whose tables give Code as a String (INTERFACES.md §0)
STRING_CODE_PREFIXES = ("/CCP/", "/CAD/Machine/")


def _plain_error(request: HttpRequest, status: int, code: int, message: str) -> JsonResponse:
    code_type = str if request.path.startswith(STRING_CODE_PREFIXES) else int
    return JsonResponse(
        make_envelope(code, message, request_id_of(request), code_type),
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )


API_PREFIXES = ("/CAD/", "/CCP/", "/CAP/", "/api/", "/internal/")


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if not request.path.startswith(API_PREFIXES):
        return defaults.page_not_found(request, exception or Http404())
    return _plain_error(
        request,
        404,
        CODE_UNKNOWN_URI,
        _("no interface at %(method)s %(path)s (URIs take no trailing slash)")
        % {"method": request.method, "path": request.path},
    )


def handler500(request: HttpRequest) -> JsonResponse:
    return _plain_error(
        request,
        500,
        CODE_INTERNAL,
        _("internal error; the facility logged it under this RequestID"),
    )


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    if isinstance(exception, RequestDataTooBig):
        return _plain_error(request, 413, CODE_TOO_LARGE, _("request body is too large"))
    return _plain_error(request, 400, CODE_INVALID, _("bad request"))
