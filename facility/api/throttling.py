"""Per-client rate limits: a client's own `rate_per_minute`, else
FACILITY_RATE_PER_MINUTE.

Counts live in Django's cache: per process with the default local-memory
cache, one count across every gunicorn worker (and every facility sharing
it) with FACILITY_REDIS_URL. DRF's SimpleRateThrottle keeps a list of request
times under one key and writes it back whole: across processes two requests
can read the same list and one count is lost, and at 6000/min the list is
6000 floats per request. So this is a sliding window of two minute counters
instead, each bumped with the cache's atomic incr (Redis INCR): the estimate
is this minute's count plus last minute's weighted by the part of it still
inside the window."""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from facility.models import PlatformClient

log = logging.getLogger(__name__)
WINDOW_S = 60


class ClientRateThrottle(BaseThrottle):
    scope = "platform-client"

    def __init__(self) -> None:
        self.wait_s: float | None = None

    def limit_for(self, request: Request) -> int:
        client = request.auth
        if isinstance(client, PlatformClient) and client.rate_per_minute:
            return int(client.rate_per_minute)
        return int(settings.RATE_PER_MINUTE)

    def cache_key(self, request: Request) -> str:
        client = request.auth
        ident = (
            f"client-{client.pk}" if isinstance(client, PlatformClient) else self.get_ident(request)
        )
        return f"throttle:{self.scope}:{ident}"

    def allow_request(self, request: Request, view: Any) -> bool:
        limit = self.limit_for(request)
        if not limit:
            return True
        try:
            return self._allow(self.cache_key(request), limit)
        except Exception as error:
            # The backend's own errors (redis.ConnectionError, …) share no
            # Django base class. Fail open: a dead cache must not take the
            # API down with it; /readyz names Redis meanwhile.
            log.warning("rate limit not checked, the cache failed: %s", error)
            return True

    def _allow(self, key: str, limit: int) -> bool:
        now = self.timer()
        minute = int(now // WINDOW_S)
        elapsed = now - minute * WINDOW_S
        current_key = f"{key}:{minute}"
        # add() only creates; incr() is atomic, so concurrent requests in
        # different processes each get their own number.
        cache.add(current_key, 0, timeout=2 * WINDOW_S + 5)
        count = cache.incr(current_key)
        previous = int(cache.get(f"{key}:{minute - 1}", 0) or 0)
        weight = (WINDOW_S - elapsed) / WINDOW_S
        if count + previous * weight <= limit:
            return True
        # a refused request does not use up the quota (as DRF's throttles)
        cache.decr(current_key)
        count -= 1
        if count >= limit or not previous:
            self.wait_s = WINDOW_S - elapsed
        else:
            # when last minute's weight has dropped enough for one more
            self.wait_s = max(0.0, WINDOW_S - elapsed - (limit - count) * WINDOW_S / previous)
        return False

    def timer(self) -> float:
        return time.time()

    def wait(self) -> float | None:
        return self.wait_s
