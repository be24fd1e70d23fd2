"""Client of the engine interface (docs/engine-interface.md) that every
replica serves on its port."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import requests
from django.conf import settings


class EngineUnavailable(Exception):
    pass


def _unwrap(response: requests.Response) -> Any:
    try:
        body = response.json()
    except ValueError:
        raise EngineUnavailable(
            f"engine answered HTTP {response.status_code} without JSON"
        ) from None
    code = body.get("Code") if isinstance(body, dict) else None
    if response.status_code >= 400 or code not in (0, "0"):
        message = body.get("Message", "") if isinstance(body, dict) else ""
        raise EngineUnavailable(f"engine answered HTTP {response.status_code}: {message}")
    return body.get("Data")


def health(base_url: str, timeout_s: float = 2.0) -> dict[str, Any]:
    try:
        response = requests.get(f"{base_url}/Health", timeout=timeout_s)
    except requests.RequestException as error:
        raise EngineUnavailable(f"engine not answering: {type(error).__name__}") from None
    data = _unwrap(response)
    if not isinstance(data, dict) or data.get("Status") != "READY":
        raise EngineUnavailable(f"engine not ready: {data}")
    return data


def call(base_url: str, method: str, path: str, body: Any = None, timeout_s: float = 5.0) -> Any:
    try:
        response = requests.request(method, f"{base_url}{path}", json=body, timeout=timeout_s)
    except requests.RequestException as error:
        raise EngineUnavailable(f"engine not answering: {type(error).__name__}") from None
    return _unwrap(response)


def engine_token(engine_id: str) -> str:
    """The credential a replica posts events with (its EVENT_SINK_TOKEN),
    derived from the facility's secret so nothing has to be stored."""
    return hmac.new(
        settings.SECRET_KEY.encode(), f"engine-events:{engine_id}".encode(), hashlib.sha256
    ).hexdigest()


def check_engine_token(engine_id: str, token: str) -> bool:
    return bool(engine_id) and hmac.compare_digest(engine_token(engine_id), token)
