"""The standard's response envelope {Code, Message, Data, RequestID}.

Tables disagree on Code's JSON type (INTERFACES.md §0): each view declares
`code_type` (int or str) and the envelope emits Code in that type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.renderers import JSONRenderer

SUCCESS_MESSAGE = "success"


def code_value(code: int, code_type: type) -> int | str:
    return str(code) if code_type is str else int(code)


def code_type_of(view: Any) -> type:
    return getattr(view, "code_type", int)


def make_envelope(
    code: int, message: str, request_id: str, code_type: type, data: Any = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"Code": code_value(code, code_type), "Message": message[:1024]}
    if data is not None:
        body["Data"] = data
    body["RequestID"] = request_id
    return body


class EnvelopeRenderer(JSONRenderer):
    """Wraps a view's data in the envelope; error bodies built by the
    exception handler are already envelopes and pass through."""

    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        context = renderer_context or {}
        response = context.get("response")
        request = context.get("request")
        if response is not None and not getattr(response, "is_envelope", False):
            from facility.api.middleware import request_id_of

            rid = request_id_of(request._request) if request is not None else ""
            data = make_envelope(0, SUCCESS_MESSAGE, rid, code_type_of(context.get("view")), data)
        return super().render(data, accepted_media_type, renderer_context)
