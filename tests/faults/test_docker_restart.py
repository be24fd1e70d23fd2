"""The Docker engine restarted under a running service: dockerd gets SIGTERM
(live-restore is off, so its containers stop with it), scripts/ensure-docker.sh
starts it again, and the reconcile pass brings the replica back to RUNNING —
one container, answering on 127.0.0.1, the exit and the restart on record.

In-process (the `api` fixture and this process's database, unlike the other
fault tests): the facility part under test is the reconciler, the part that
is killed is the engine. Without a Docker engine the test is skipped with the
reason; with CI=true that is a failure instead."""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from compute.actions import ensure_local_node
from services import jobs
from services.choices import ReplicaState
from services.models import Replica, ServiceEvent
from services.runtime.base import LABEL_REPLICA
from tests.support import packages as pkg
from tests.support.docker import (
    built_image,
    docker_cli,
    ensure_docker,
    require_docker,
    unavailable,
)
from tests.support.engines import stop_all_replicas

pytestmark = [pytest.mark.faults, pytest.mark.docker]

REPO = Path(__file__).resolve().parents[2]
STUB = REPO / "tests" / "support" / "stub_engine.py"
RUN = uuid.uuid4().hex[:8]
TAG = f"facility-test/restart-stub:{RUN}"
PID_FILE = Path("/var/run/docker.pid")


def dockerd() -> psutil.Process | None:
    """The engine's process, from its pid file, when it runs."""
    try:
        process = psutil.Process(int(PID_FILE.read_text().strip()))
    except (OSError, ValueError, psutil.Error):
        return None
    try:
        return process if process.name() == "dockerd" else None
    except psutil.Error:
        return None


@pytest.fixture(scope="module")
def image_package(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bytes]:
    """The stub engine in the image form: built FROM the base image, saved to
    image.tar inside a tar.gz package; the tag removed again afterwards."""
    require_docker()
    if dockerd() is None:
        unavailable(f"no dockerd process of this machine in {PID_FILE} to restart")
    base = built_image("base")
    context = tmp_path_factory.mktemp("image")
    (context / "stub_engine.py").write_bytes(STUB.read_bytes())
    (context / "Dockerfile").write_text(
        f"FROM {base}\nCOPY stub_engine.py /app/stub_engine.py\n", encoding="utf-8"
    )
    try:
        docker_cli("build", "-q", "-t", TAG, str(context))
        tar = context / "image.tar"
        docker_cli("save", "-o", str(tar), TAG)
        document = {
            "Name": "stub-engine-image",
            "Version": "1.0",
            "Author": "tests",
            "Bin": {"Type": "image", "LocalUri": "image.tar"},
            "AlgoRuntime": {
                "Cmd": "python3 /app/stub_engine.py",
                "Xpu": [{"Quota": 0, "Capacities": {"Stream_Video_Quota": 4}}],
            },
        }
        archive = pkg.tar_of(
            {"algo.yaml": yaml.safe_dump(document).encode(), "image.tar": tar.read_bytes()},
            gz=True,
        )
        yield archive.data
    finally:
        leftovers = docker_cli(
            "ps", "-aq", "--filter", f"label=facility.package=restart-{RUN}", check=False
        ).stdout.split()
        if leftovers:
            docker_cli("rm", "-f", *leftovers, check=False)
        docker_cli("rmi", "-f", TAG, check=False)


@pytest.fixture
def engines_stopped_after() -> Iterator[None]:
    yield
    ensure_docker()  # never leave the machine without its engine
    stop_all_replicas()


def health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/Health", timeout=2) as answer:
        return json.loads(answer.read())["Data"]


def containers_of(replica_name: str) -> list[str]:
    return docker_cli(
        "ps", "-aq", "--filter", f"label={LABEL_REPLICA}={replica_name}"
    ).stdout.split()


def test_a_restarted_docker_engine_gets_its_replica_back(
    db: Any, api: Any, file_server: Any, image_package: bytes, engines_stopped_after: None
) -> None:
    ensure_local_node()
    package_id = f"restart-{RUN}"
    url = file_server.add(f"{package_id}.tar.gz", image_package)
    pushed = api.post("/CAP/AlgoFilePackages", {"AlgoFilePackageID": package_id, "Url": url})
    assert pushed.status_code == 200, pushed.body
    detail = api.get(f"/CAP/AlgoFilePackages/{package_id}").body["Data"]
    assert detail["Status"] == 2, detail
    created = api.post(
        "/CAP/AlgoServices", {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": package_id}
    )
    assert created.status_code == 200, created.body
    service_id = created.body["Data"]["AlgoServiceID"]
    assert api.get(f"/CAP/AlgoServices/{service_id}").body["Data"]["Status"] == "RUNNING"
    replica = Replica.objects.get(service_id=service_id)
    assert replica.runtime == "docker", replica.runtime
    assert health(replica.port)["EngineID"] == replica.name
    [before] = containers_of(replica.name)

    # the fault: dockerd stopped (its containers with it), then started again
    process = dockerd()
    assert process is not None
    t_kill = time.monotonic()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    t_down = time.monotonic()
    ready = ensure_docker()
    assert ready.returncode == 0, ready.stderr[-2000:]
    t_up = time.monotonic()

    deadline = t_up + 120
    passes = 0
    while True:
        jobs.reconcile_services()
        passes += 1
        replica.refresh_from_db()
        if replica.state == ReplicaState.RUNNING and replica.restarts >= 1:
            break
        assert time.monotonic() < deadline, (replica.state, replica.reason)
        time.sleep(0.2)
    t_back = time.monotonic()

    assert health(replica.port)["EngineID"] == replica.name  # answers on 127.0.0.1
    assert api.get(f"/CAP/AlgoServices/{service_id}").body["Data"]["Status"] == "RUNNING"
    [after] = containers_of(replica.name)  # exactly one, the old one replaced
    assert after != before
    kinds = set(
        ServiceEvent.objects.filter(service_id=service_id, replica_name=replica.name).values_list(
            "kind", flat=True
        )
    )
    assert {"exited", "restarted"} <= kinds, kinds
    sys.stdout.write(
        f"\ndockerd restart: stop {t_down - t_kill:.2f} s, start {t_up - t_down:.2f} s, "
        f"engine up -> replica RUNNING {t_back - t_up:.2f} s ({passes} reconcile passes), "
        f"SIGTERM -> RUNNING {t_back - t_kill:.2f} s\n"
    )

    assert api.delete(f"/CAP/AlgoServices/{service_id}").status_code == 200
    assert containers_of(replica.name) == []
