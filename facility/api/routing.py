"""URIs of the standard: `X`, `X:verb`, `X/<id>`, `X/<id>:verb`, no trailing
slash. A template names ids in braces: `CAP/AlgoTasks/{id}:pause`."""

from __future__ import annotations

import re
from typing import Any

from django.urls import URLPattern, re_path

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def _escape(literal: str) -> str:
    # re.escape also escapes '-', which then leaks into the OpenAPI paths
    return re.escape(literal).replace("\\-", "-")


def uri(template: str, view: Any, name: str) -> URLPattern:
    parts = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(_escape(template[position : match.start()]))
        parts.append(f"(?P<{match.group(1)}>[^/:]+)")
        position = match.end()
    parts.append(_escape(template[position:]))
    return re_path("^" + "".join(parts) + "$", view, name=name)
