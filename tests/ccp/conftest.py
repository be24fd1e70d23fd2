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


W = "/CCP/AlgoService/Workloads"
P = "/CCP/AlgoService/Pods"


def workload_body(image: str, name: str = "people", replicas: int = 1, **kw: Any) -> dict[str, Any]:
    """POST /CCP/AlgoService/Workloads: `replicas` pods of `image` in c1/default,
    one CPU and 1 GiB each, no accelerator; `kw` adds or overrides fields."""
    return {
        "ClusterCode": "c1",
        "Namespace": "default",
        "Name": name,
        "Labels": {"app": name, "tier": "analysis"},
        "LabelSelector": {"app": name},
        "ContainerName": "engine",
        "Image": image,
        "XpuType": "",
        "Cpu": 1,
        "Memory": 1,
        "Xpu": 0,
        "Replicas": replicas,
        **kw,
    }


def create_workload(
    api: Any, image: str, name: str = "people", replicas: int = 1, **kw: Any
) -> Any:
    response = api.post(W, workload_body(image, name, replicas, **kw))
    assert response.status_code == 200, response.body
    return response


def pods(api: Any, name: str = "people", namespace: str = "default") -> list[dict[str, Any]]:
    response = api.post(P, {"ClusterCode": "c1", "Namespace": namespace, "WorkloadName": name})
    assert response.status_code == 200, response.body
    return response.body["Data"]["Pods"]


def all_ready(
    api: Any, count: int, name: str = "people", timeout: float = 20.0
) -> list[dict[str, Any]]:
    """The workload's pods once there are `count` of them, all ready."""

    def ready() -> list[dict[str, Any]] | None:
        found = pods(api, name)
        return found if len(found) == count and all(p["Ready"] for p in found) else None

    found = wait_for(ready, timeout)
    assert found, pods(api, name)
    return found


def scale(api: Any, replicas: int, name: str = "people") -> None:
    body = {"ClusterCode": "c1", "Namespace": "default", "Replicas": replicas}
    response = api.call("put", f"{W}/{name}", body)
    assert response.status_code == 200, response.body


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
