"""Per-client rate limits: a client's own `rate_per_minute`, else
FACILITY_RATE_PER_MINUTE. Counts live in Django's cache (per process with the
default local-memory cache: set CACHES to Redis for one count across
processes)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from facility.models import PlatformClient


class ClientRateThrottle(SimpleRateThrottle):
    scope = "platform-client"

    def get_rate(self) -> str | None:
        return None  # decided per request in allow_request

    def allow_request(self, request: Request, view: Any) -> bool:
        client = request.auth
        limit = settings.RATE_PER_MINUTE
        if isinstance(client, PlatformClient) and client.rate_per_minute:
            limit = client.rate_per_minute
        if not limit:
            return True
        self.rate = f"{limit}/min"
        self.num_requests, self.duration = limit, 60
        return super().allow_request(request, view)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        client = request.auth
        ident = (
            f"client-{client.pk}" if isinstance(client, PlatformClient) else self.get_ident(request)
        )
        return self.cache_format % {"scope": self.scope, "ident": ident}
