"""Liveness and readiness of the facility itself (/healthz, /readyz), used
by the shipped container and Kubernetes manifests. Readiness names the
dependency that is missing: the database, Redis (when FACILITY_REDIS_URL is
set), the background workers, the loops, a container runtime in use."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

from facility.models import Heartbeat

WORKERS = "workers"
LOOPS = "loops"


def beat(name: str, detail: str = "") -> None:
    Heartbeat.objects.update_or_create(
        name=name, defaults={"at": timezone.now(), "detail": detail[:256]}
    )


def worker_heartbeat() -> None:
    """Scheduled on the django-q2 workers: proves they take jobs."""
    beat(WORKERS)


def loops_heartbeat() -> None:
    beat(LOOPS)


def _fresh(name: str, within_s: float) -> tuple[bool, str]:
    row = Heartbeat.objects.filter(name=name).first()
    if row is None:
        return False, "no heartbeat yet"
    age = (timezone.now() - row.at).total_seconds()
    if age > within_s:
        return False, f"last heartbeat {age:.0f} s ago"
    return True, f"heartbeat {age:.0f} s ago"


def _redis() -> dict[str, Any]:
    """A round trip through the shared cache: the rate limits and the
    workers' statistics live there."""
    key = f"readyz:{uuid.uuid4().hex}"
    try:
        cache.set(key, 1, timeout=10)
        found = cache.get(key)
        cache.delete(key)
    except Exception as error:  # the client's own errors (redis.ConnectionError, …)
        return {"ok": False, "detail": f"unreachable: {error}"[:200]}
    if found != 1:
        return {"ok": False, "detail": "a value written was not read back"}
    return {"ok": True, "detail": _redis_address()}


def _redis_address() -> str:
    """The URL without its password (the detail is shown to anyone)."""
    parts = urlsplit(settings.REDIS_URL)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def checks() -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    if settings.REDIS_URL:
        results["redis"] = _redis()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        results["database"] = {"ok": True, "detail": connection.vendor}
    except DatabaseError as error:
        results["database"] = {"ok": False, "detail": f"unreachable: {error}"[:200]}
        return results  # nothing else can be read
    ok, detail = _fresh(WORKERS, settings.HEALTH_WORKER_STALE_S)
    results["workers"] = {"ok": ok, "detail": detail}
    ok, detail = _fresh(LOOPS, settings.HEALTH_LOOPS_STALE_S)
    results["loops"] = {"ok": ok, "detail": detail}
    from services.models import AlgoService

    for name in sorted(
        set(AlgoService.objects.visible().values_list("runtime", flat=True)) - {"local"}
    ):
        from services.runtime.registry import get_runtime

        available, why = get_runtime(name).is_available()
        results[f"runtime:{name}"] = {"ok": available, "detail": why or "available"}
    return results


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})


def readyz(request: HttpRequest) -> JsonResponse:
    results = checks()
    ready = all(item["ok"] for item in results.values())
    missing = [name for name, item in results.items() if not item["ok"]]
    return JsonResponse(
        {"status": "ready" if ready else "not ready", "missing": missing, "checks": results},
        status=200 if ready else 503,
    )
