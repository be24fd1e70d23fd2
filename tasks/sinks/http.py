"""POST the event document as JSON to a ResultReceiveUrl.

Headers: `X-Event-Key` (idempotency: the same event always carries the same
key, so a receiver can drop repeats), `X-Facility-Timestamp`, and, when
FACILITY_RESULT_HMAC_SECRET is set, `X-Facility-Signature: sha256=<hex>` over
`<timestamp>.<body>`."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

import requests
from django.conf import settings

from facility.netpolicy import check_url_resolved
from tasks.sinks import SendResult


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class HttpSink:
    def send(self, target: str, document: dict[str, Any], event_key: str) -> SendResult:
        body = json.dumps(document, ensure_ascii=False).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Event-Key": event_key,
            "X-Facility-Timestamp": timestamp,
        }
        secret = settings.RESULT_HMAC_SECRET
        if secret:
            headers["X-Facility-Signature"] = signature(secret, timestamp, body)
        try:
            check_url_resolved(target)
        except PermissionError as error:
            return SendResult(False, None, str(error))
        try:
            response = requests.post(
                target, data=body, headers=headers, timeout=settings.RESULT_TIMEOUT_S
            )
        except requests.RequestException as error:
            return SendResult(False, None, f"{type(error).__name__}: {str(error)[:300]}")
        if 200 <= response.status_code < 300:
            return SendResult(True, response.status_code)
        return SendResult(False, response.status_code, f"HTTP {response.status_code}")
