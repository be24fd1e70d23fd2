"""Fixtures of the /CCP tests: a real Docker engine and a test engine image
built FROM facility/base-python:bookworm (scripts/build-base-image.sh). No
engine: the Docker tests skip, and fail with CI=true."""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.docker import built_image, docker_cli, require_docker

REPO = Path(__file__).resolve().parents[2]
ENGINE = Path(__file__).with_name("engine.py")
TEST_IMAGE = "facility-test/ccp-engine:1"


def ccp_containers() -> list[str]:
    out = docker_cli("ps", "-aq", "--filter", "label=facility.managed=ccp", check=False)
    return out.stdout.split()


@pytest.fixture(scope="session")
def engine_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require_docker()
    base = built_image("base")
    context = tmp_path_factory.mktemp("ccp-image")
    shutil.copy(ENGINE, context / "engine.py")
    (context / "Dockerfile").write_text(
        f"FROM {base}\nCOPY engine.py /app/engine.py\nENV PYTHONUNBUFFERED=1\n"
        'CMD ["python3", "/app/engine.py"]\n'
    )
    result = docker_cli("build", "-q", "-t", TEST_IMAGE, str(context), check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    yield TEST_IMAGE
    leftovers = ccp_containers()
    if leftovers:
        docker_cli("rm", "-f", *leftovers, check=False)


@pytest.fixture
def docker_ccp(engine_image: str, settings: Any) -> Iterator[str]:
    """The docker backend, and every ccp container removed after the test."""
    settings.CCP_BACKEND = "docker"
    settings.CCP_HEALTH_TIMEOUT_S = 0.5
    yield engine_image
    leftovers = ccp_containers()
    if leftovers:
        docker_cli("rm", "-f", *leftovers, check=False)


def wait_for(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def health(ip: str, port: int) -> Any:
    import json

    try:
        with urllib.request.urlopen(f"http://{ip}:{port}/Health", timeout=1) as r:
            return json.loads(r.read())
    except (OSError, urllib.error.URLError):
        return None
