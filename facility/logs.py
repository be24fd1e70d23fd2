"""Log records as one JSON object per line (FACILITY_LOG_FORMAT=json), with
the request ID of the call being served and the IDs a message names
(`extra={"task_id": …}`); human-readable lines otherwise."""

from __future__ import annotations

import contextvars
import json
import logging
from datetime import UTC, datetime

current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "current_request_id", default=""
)

CONTEXT_FIELDS = ("task_id", "service_id", "package_id", "replica", "client")
# keys that must never be written even if a caller passes them in `extra`
SECRET_FIELDS = ("token", "password", "secret", "authorization")


class RequestIDFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        document = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            document["request_id"] = request_id
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value not in (None, ""):
                document[field] = str(value)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        for key in list(document):
            if any(secret in key.lower() for secret in SECRET_FIELDS):
                document.pop(key)
        return json.dumps(document, ensure_ascii=False)
