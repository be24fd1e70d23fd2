from __future__ import annotations

from rest_framework.parsers import JSONParser


class TolerantJSONParser(JSONParser):
    """JSON bodies. Platforms in the field sometimes label JSON as text/plain;
    those are read as JSON too. Any other declared type is refused with 415."""

    media_type = "application/json"


class PlainTextJSONParser(JSONParser):
    media_type = "text/plain"
