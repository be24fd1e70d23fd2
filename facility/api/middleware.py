from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

# The standard allows a RequestID of at most 128 characters; anything else
# the client sends is replaced rather than echoed into logs and answers.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}$")


def request_id_of(request: HttpRequest) -> str:
    rid = getattr(request, "request_id", None)
    if rid is None:
        supplied = request.META.get("HTTP_X_REQUEST_ID", "")
        rid = supplied if _VALID_REQUEST_ID.match(supplied) else str(uuid.uuid4())
        request.request_id = rid  # type: ignore[attr-defined]
    return rid


class RequestIDMiddleware:
    """Gives every request an ID (the client's X-Request-ID when valid) and
    echoes it in the X-Request-ID response header."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        from facility.logs import current_request_id

        rid = request_id_of(request)
        token = current_request_id.set(rid)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = rid
        return response
