"""Records every mutating call to the facility's interfaces (AuditRecord),
after the answer is known: who, when, which URI, request ID, outcome."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from facility.models import AuditRecord

log = logging.getLogger(__name__)

AUDITED_PREFIXES = ("/CAD/", "/CCP/", "/CAP/", "/api/compute/", "/api/deliveries")
READ_METHODS = ("GET", "HEAD", "OPTIONS")


def is_mutating(request: HttpRequest) -> bool:
    if request.method in READ_METHODS or not request.path.startswith(AUDITED_PREFIXES):
        return False
    return not request.path.endswith(":search")


def _outcome(response: HttpResponse) -> tuple[str, str]:
    if response.get("Content-Type", "").startswith("application/json"):
        try:
            body = json.loads(response.content)
        except (ValueError, AttributeError):
            return "", ""
        if isinstance(body, dict):
            return str(body.get("Code", ""))[:16], str(body.get("Message", ""))[:512]
    return "", ""


class AuditMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_mutating(request):
            return self.get_response(request)
        started = time.monotonic()
        response = self.get_response(request)
        user = getattr(request, "user", None)
        code, message = _outcome(response)
        try:
            AuditRecord.objects.create(
                client=user.get_username() if user is not None and user.is_authenticated else "",
                method=request.method or "",
                path=request.path[:512],
                request_id=getattr(request, "request_id", ""),
                status=response.status_code,
                code=code,
                message=message,
                remote_addr=request.META.get("REMOTE_ADDR", "")[:64],
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        except DatabaseError:
            # the answer stands; the log says the audit row is missing
            log.exception("audit record not stored for %s %s", request.method, request.path)
        return response
