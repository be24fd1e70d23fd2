"""The facility's own container image (deploy/Dockerfile, deploy/build-image.sh)
against a real Docker engine: built (the base from .cache/images when it was
built before), run with host networking on a free loopback port, alive,
eventually ready, and answering an authenticated /CAP call. Without an engine
the test is skipped with the reason; with CI=true that is a failure."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from tests.support.docker import docker_cli, require_docker

from .conftest import REPO, ScratchFacility

pytestmark = pytest.mark.docker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(port: int, path: str, body: Any = None, token: str = "") -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def wait_status(port: int, path: str, want: int, timeout: float) -> tuple[int, Any]:
    deadline = time.monotonic() + timeout
    last: tuple[int, Any] = (0, None)
    while time.monotonic() < deadline:
        try:
            last = http(port, path)
            if last[0] == want:
                return last
        except (OSError, ValueError):
            pass
        time.sleep(0.5)
    return last


@pytest.fixture(scope="module")
def facility_image() -> str:
    require_docker()
    t0 = time.monotonic()
    built = subprocess.run(
        [str(REPO / "deploy/build-image.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=REPO,
    )
    log = "\n".join(
        line for line in built.stderr.splitlines() if "is ignored: it is neither" not in line
    )
    assert built.returncode == 0, log[-3000:]
    print(f"\nfacility image ready in {time.monotonic() - t0:.1f} s:\n{log}")
    return built.stdout.strip().splitlines()[-1]


@pytest.fixture
def container_name() -> Iterator[str]:
    name = f"facility-image-test-{uuid.uuid4().hex[:8]}"
    yield name
    docker_cli("rm", "-f", "-v", name, check=False)


def test_image_runs_the_facility(
    facility_image: str, container_name: str, scratch_facility: ScratchFacility
) -> None:
    config = json.loads(docker_cli("image", "inspect", facility_image).stdout)[0]["Config"]
    assert config["User"] == "facility"
    assert "/data" in config["Volumes"]
    assert "/healthz" in " ".join(config["Healthcheck"]["Test"])

    port = free_port()
    env = ["-e", f"FACILITY_BIND=127.0.0.1:{port}", "-e", "FACILITY_NVML_ENABLED=false"]
    vendor = settings.DATABASES["default"]["ENGINE"]
    if vendor == "django.db.backends.postgresql":
        # the image's psycopg against a database of its own on the host's server
        env += ["-e", f"DATABASE_URL={scratch_facility.database_url}"]
    run = docker_cli(
        "run", "-d", "--name", container_name, "--network", "host", *env, facility_image
    )
    assert run.returncode == 0, run.stderr

    def logs() -> str:
        return docker_cli("logs", "--tail", "60", container_name, check=False).stderr

    status, body = wait_status(port, "/healthz", 200, timeout=90)
    assert status == 200, logs()
    assert body == {"status": "alive"}

    # readiness: the database at once, the loops and the workers' first heartbeat
    status, body = wait_status(port, "/readyz", 200, timeout=180)
    assert status == 200, f"{body}\n{logs()}"
    assert body["status"] == "ready" and body["missing"] == []

    assert docker_cli("exec", container_name, "id", "-u").stdout.strip() == "10001"
    token = docker_cli(
        "exec",
        container_name,
        "python",
        "manage.py",
        "create_platform_client",
        "image-test",
        "--quiet",
    ).stdout.strip()
    assert token
    status, body = http(
        port, "/CAP/AlgoFilePackages:search", {"PageNumber": 1, "PageSize": 10}, token=token
    )
    assert status == 200, body
    assert body["Code"] == 0 and body["Data"]["TotalSize"] == 0
    status, body = http(port, "/CAP/AlgoFilePackages:search", {"PageNumber": 1, "PageSize": 10})
    assert status in (401, 403) and body["Code"] != 0

    # the image's own HEALTHCHECK (first probe after its 15 s interval)
    deadline = time.monotonic() + 60
    health = ""
    while time.monotonic() < deadline:
        health = docker_cli(
            "inspect", "-f", "{{.State.Health.Status}}", container_name
        ).stdout.strip()
        if health == "healthy":
            break
        time.sleep(1)
    assert health == "healthy", logs()

    # a clean stop: runfacility forwards SIGTERM to gunicorn, workers and loops
    docker_cli("stop", "-t", "30", container_name, timeout=60)
    state = json.loads(docker_cli("inspect", container_name).stdout)[0]["State"]
    assert state["ExitCode"] == 0, logs()
