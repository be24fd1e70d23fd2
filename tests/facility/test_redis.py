"""The shared cache (FACILITY_REDIS_URL) against the real Redis on
127.0.0.1:6379: two API server processes count one platform client's
requests together (and without Redis each counts alone), /readyz names Redis
when it cannot be reached, and the API keeps answering meanwhile.

Each test uses database REDIS_DB and a key prefix of its own, and deletes
its keys afterwards."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from facility import health
from tests.deploy.conftest import REPO, ScratchFacility, scratch_facility  # noqa: F401 - the fixture
from tests.support.docker import in_ci

REDIS_HOST, REDIS_PORT, REDIS_DB = "127.0.0.1", 6379, 11
SEARCH = "/CAP/AlgoFilePackages:search"


def redis_client() -> Any:
    import redis

    return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=5)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix nobody else uses; its keys are deleted afterwards."""
    client = redis_client()
    try:
        client.ping()
    except Exception as error:  # redis.ConnectionError
        # like a missing Docker engine: skipped with the reason, but CI has one
        why = f"no Redis at {REDIS_HOST}:{REDIS_PORT}: {error}"
        if in_ci():
            pytest.fail(f"CI=true and {why}", pytrace=False)
        pytest.skip(why)
    prefix = f"facility-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def redis_url() -> str:
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"


def post(port: int, path: str, token: str) -> int:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps({"PageNumber": 1, "PageSize": 1}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


class Servers:
    """API server processes (gunicorn, one worker each) on one database."""

    def __init__(self, facility: ScratchFacility, log_dir: Path) -> None:
        self.facility = facility
        self.log_dir = log_dir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, count: int, **env: str) -> list[int]:
        ports = []
        for _ in range(count):
            port = free_port()
            log = (self.log_dir / f"gunicorn-{port}.log").open("wb")
            self.procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gunicorn",
                        "facility.wsgi:application",
                        "--bind",
                        f"127.0.0.1:{port}",
                        "--workers",
                        "1",
                    ],
                    cwd=REPO,
                    env=self.facility.env(**env),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            ports.append(port)
        for port in ports:
            self.wait_alive(port)
        return ports

    def wait_alive(self, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"no API server on {port}:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(path.read_text()[-2000:] for path in self.log_dir.glob("*.log"))

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []


@pytest.fixture
def servers(scratch_facility: ScratchFacility, tmp_path: Path) -> Iterator[Servers]:  # noqa: F811
    scratch_facility.manage("migrate", "--noinput")
    running = Servers(scratch_facility, tmp_path)
    yield running
    running.stop()


def alternate(ports: list[int], token: str, requests: int) -> list[int]:
    return [post(ports[i % len(ports)], SEARCH, token) for i in range(requests)]


def test_two_server_processes_share_a_clients_rate_limit(
    servers: Servers, redis_prefix: str
) -> None:
    token = servers.facility.manage("create_platform_client", "redis-test", "--quiet").strip()
    limit = {"FACILITY_RATE_PER_MINUTE": "5"}
    shared = servers.start(
        2,
        FACILITY_REDIS_URL=redis_url(),
        FACILITY_REDIS_KEY_PREFIX=redis_prefix,
        **limit,
    )
    codes = alternate(shared, token, 8)
    assert codes == [200] * 5 + [429] * 3, servers.logs()
    # the count is in Redis, under the facility's prefix
    keys = [key.decode() for key in redis_client().scan_iter(match=f"{redis_prefix}:*")]
    assert any("throttle:platform-client:client-" in key for key in keys), keys

    # a burst from many connections at once, spread over both processes:
    # each count is an atomic INCR, so exactly the limit gets through
    burst = servers.facility.manage("create_platform_client", "redis-burst", "--quiet").strip()
    with ThreadPoolExecutor(max_workers=8) as pool:
        codes = list(pool.map(lambda i: post(shared[i % 2], SEARCH, burst), range(24)))
    assert sorted(codes) == [200] * 5 + [429] * 19, codes
    servers.stop()

    # the same two processes without Redis: each counts only its own requests
    alone = servers.start(2, **limit)
    codes = alternate(alone, token, 12)
    assert codes == [200] * 10 + [429] * 2, servers.logs()


@pytest.fixture
def ready_otherwise() -> None:
    """The workers and loops have just beaten: only Redis can fail /readyz."""
    health.beat(health.WORKERS)
    health.beat(health.LOOPS)


def redis_cache(url: str, prefix: str) -> dict[str, Any]:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": prefix,
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }


@pytest.mark.usefixtures("ready_otherwise")
def test_readiness_names_redis_when_it_cannot_be_reached(
    client: Any, settings: Any, redis_prefix: str
) -> None:
    # no Redis configured: no check
    body = client.get("/readyz").json()
    assert "redis" not in body["checks"]

    settings.REDIS_URL = redis_url()
    settings.CACHES = redis_cache(redis_url(), redis_prefix)
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["redis"] == {"ok": True, "detail": redis_url()}

    dead = f"redis://:hunter2@127.0.0.1:{free_port()}/{REDIS_DB}"
    settings.REDIS_URL = dead
    settings.CACHES = redis_cache(dead, redis_prefix)
    started = time.monotonic()
    response = client.get("/readyz")
    assert time.monotonic() - started < 30  # the timeouts hold; not a speed figure
    body = response.json()
    assert response.status_code == 503, body
    assert body["missing"] == ["redis"]
    assert body["checks"]["redis"]["ok"] is False
    assert body["checks"]["redis"]["detail"].startswith("unreachable: ")
    assert "hunter2" not in json.dumps(body)
    # /metrics does not depend on it
    assert client.get("/metrics").status_code == 200


def test_the_api_keeps_answering_while_redis_is_away(
    api: Any, settings: Any, redis_prefix: str
) -> None:
    settings.RATE_PER_MINUTE = 3
    dead = f"redis://127.0.0.1:{free_port()}/{REDIS_DB}"
    settings.REDIS_URL = dead
    settings.CACHES = redis_cache(dead, redis_prefix)
    # the limit is not checked (fail open) rather than every call failing
    assert [api.post(SEARCH, {}).status_code for _ in range(4)] == [200] * 4

    settings.REDIS_URL = redis_url()
    settings.CACHES = redis_cache(redis_url(), redis_prefix)
    assert [api.post(SEARCH, {}).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_without_redis_the_cache_is_per_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FACILITY_REDIS_URL"}
    code = "from django.conf import settings; print(settings.CACHES['default']['BACKEND'])"
    run = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=REPO,
        env={**env, "DJANGO_SETTINGS_MODULE": "facility.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout.strip() == "django.core.cache.backends.locmem.LocMemCache", run.stderr
    run = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=REPO,
        env={
            **env,
            "DJANGO_SETTINGS_MODULE": "facility.settings",
            "FACILITY_REDIS_URL": redis_url(),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.stdout.strip() == "django.core.cache.backends.redis.RedisCache", run.stderr
