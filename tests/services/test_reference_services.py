"""The reference algorithm as a real package through the same push path as
any vendor's: `manage.py build_reference_package` builds it, the file server
serves it, POST /CAP/AlgoFilePackages pulls it, and POST /CAP/AlgoServices
runs it — the artifact form as a local process, the image form as a Docker
container (docs/reference-algorithm.md)."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from algorithms.management.commands.build_reference_package import (
    default_streams,
    engine_digest,
)
from compute.actions import ensure_local_node
from services import jobs
from services.choices import ReplicaState
from services.models import Replica, ServiceEvent
from tests.reference.conftest import (
    build_reference_package,
    media_folder,
    ssdlite_model_path,
    task_body,
)
from tests.support.docker import REPO, built_image, docker_cli, require_docker
from tests.support.engines import analyse_to_the_end

RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="session")
def media() -> Path:
    """vtest footage (scripts/fetch-test-media.sh), as tests/reference has it."""
    return media_folder()


@pytest.fixture(autouse=True)
def _no_event_sink(settings: Any) -> None:
    # events go to the facility's intake; none runs here: a closed port
    settings.PUBLIC_URL = "http://127.0.0.1:9"
    # a range of this run's own: other test runs on the machine use the default
    low = 20000 + int(RUN, 16) % 400 * 100
    settings.ENGINE_PORT_RANGE = f"{low}-{low + 99}"


@pytest.fixture(scope="session")
def artifact_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    return build_reference_package(
        tmp_path_factory.mktemp("reference-artifact"), "reference-artifact"
    )


def push(api: Any, file_server: Any, package: tuple[Path, str], package_id: str) -> str:
    path, md5 = package
    (file_server.root / path.name).symlink_to(path)
    response = api.post(
        "/CAP/AlgoFilePackages",
        {"AlgoFilePackageID": package_id, "Url": file_server.url(path.name), "MD5": md5},
    )
    assert response.status_code == 200, response.body
    detail = api.get(f"/CAP/AlgoFilePackages/{package_id}").body["Data"]
    assert detail["Status"] == 2, detail
    return package_id


def create(api: Any, package_id: str, expect: int = 200, **body: Any) -> Any:
    payload = {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": package_id, **body}
    response = api.post("/CAP/AlgoServices", payload)
    assert response.status_code == expect, response.body
    return response.body


def engine_get(replica: Replica, path: str) -> Any:
    response = requests.get(f"{replica.engine_url}{path}", timeout=5)
    assert response.status_code == 200, response.text
    return response.json()["Data"]


def engine_post(replica: Replica, path: str, body: Any) -> Any:
    response = requests.post(f"{replica.engine_url}{path}", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["Data"]


# --- artifact form: the local runtime ------------------------------------------


def test_artifact_package_runs_as_a_local_service(api, file_server, artifact_package):
    ensure_local_node()
    package_id = push(api, file_server, artifact_package, "reference-artifact")
    package = api.get(f"/CAP/AlgoFilePackages/{package_id}").body["Data"]
    assert package["Name"] == "reference-people"

    body = create(api, package_id, Env=[{"Name": "ENGINE_PORT", "Value": "1"}], expect=400)
    assert "Env[0].Name: ENGINE_PORT is not declared" in body["Message"]

    service_id = create(api, package_id, Env=[{"Name": "ENGINE_ANALYSIS_FPS", "Value": "2"}])[
        "Data"
    ]["AlgoServiceID"]
    detail = api.get(f"/CAP/AlgoServices/{service_id}").body["Data"]
    assert detail["Status"] == "RUNNING", detail
    replica = Replica.objects.get(service_id=service_id)
    assert replica.runtime == "local" and replica.state == ReplicaState.RUNNING
    health = engine_get(replica, "/Health")
    assert health["Status"] == "READY"
    assert health["EngineID"] == replica.name
    assert health["Detector"] == "hog"
    assert health["AnalysisFps"] == 2.0  # the service's Env reached the engine
    assert health["Capacity"] == {"Stream_Video_Quota": default_streams()}
    assert api.get(f"/CAP/AlgoFilePackages/{package_id}").body["Data"]["Status"] == 3


def test_a_package_with_the_neural_detector_runs_it_unless_the_service_says_hog(
    api, file_server, tmp_path_factory
):
    ssdlite_model_path()
    package = build_reference_package(
        tmp_path_factory.mktemp("reference-ssd"), "reference-ssd", "--detector", "ssdlite"
    )
    ensure_local_node()
    package_id = push(api, file_server, package, "reference-ssd")
    neural = create(api, package_id)["Data"]["AlgoServiceID"]
    health = engine_get(Replica.objects.get(service_id=neural), "/Health")
    assert health["Status"] == "READY" and health["Detector"] == "ssdlite"
    assert health["Capacity"] == {"Stream_Video_Quota": default_streams("ssdlite")}
    assert default_streams("ssdlite") == 4 * default_streams("hog")
    classic = create(api, package_id, Env=[{"Name": "ENGINE_DETECTOR", "Value": "hog"}])
    replica = Replica.objects.get(service_id=classic["Data"]["AlgoServiceID"])
    assert engine_get(replica, "/Health")["Detector"] == "hog"


def test_deleting_a_service_leaves_another_analysing(api, file_server, artifact_package, media):
    """§7.1.3 b: one service's engine keeps decoding and analysing a file
    while a second service of the same package is deleted."""
    ensure_local_node()
    package_id = push(api, file_server, artifact_package, "reference-artifact")
    keeper = create(api, package_id)["Data"]["AlgoServiceID"]
    doomed = create(api, package_id)["Data"]["AlgoServiceID"]
    keeper_replica = Replica.objects.get(service_id=keeper)
    doomed_replica = Replica.objects.get(service_id=doomed)
    keeper_pid = engine_get(keeper_replica, "/Health")["Pid"]
    doomed_pid = engine_get(doomed_replica, "/Health")["Pid"]

    # vtest.avi (768x576, 80 s) paced in real time: a camera-like stream
    url = f"file://{media / 'vtest.avi'}"
    engine_post(keeper_replica, "/AlgoTasks", task_body("keep-1", url, event_id=None))

    def stats() -> dict[str, Any]:
        return engine_get(keeper_replica, "/AlgoTasks/keep-1")

    deadline = time.monotonic() + 20
    while (before := stats())["Stats"]["FramesAnalysed"] < 3:
        assert time.monotonic() < deadline, before
        time.sleep(0.2)

    samples: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    deleting = threading.Event()

    def watch() -> None:
        while not deleting.is_set():
            try:
                samples.append(stats())
            except BaseException as error:  # reported below
                errors.append(error)
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert api.delete(f"/CAP/AlgoServices/{doomed}").status_code == 200
        time.sleep(2.0)  # keep watching after the delete
    finally:
        deleting.set()
        watcher.join(timeout=5)
    assert not errors, errors

    assert not Replica.objects.filter(service_id=doomed).exists()
    assert not psutil.pid_exists(doomed_pid) or psutil.Process(doomed_pid).status() == "zombie"

    after = stats()
    decoded = [s["Stats"]["FramesDecoded"] for s in samples]
    analysed = [s["Stats"]["FramesAnalysed"] for s in samples]
    assert len(samples) >= 10
    assert {s["Status"] for s in samples} == {"RUNNING"}
    assert decoded == sorted(decoded) and analysed == sorted(analysed)
    assert after["Stats"]["FramesDecoded"] > before["Stats"]["FramesDecoded"] + 15  # 10 fps
    assert after["Stats"]["FramesAnalysed"] > before["Stats"]["FramesAnalysed"] + 5  # 5 fps
    assert after["Stats"]["LastFrameAgeMs"] < 1000
    assert engine_get(keeper_replica, "/Health")["Pid"] == keeper_pid
    assert api.get(f"/CAP/AlgoServices/{keeper}").body["Data"]["Status"] == "RUNNING"


# --- image form: the docker runtime --------------------------------------------


@pytest.fixture(scope="module")
def engine_image() -> str:
    """A Docker engine (scripts/ensure-docker.sh) with facility/engine-python
    (built, or loaded from .cache/images). No engine: skipped, or failed with
    CI=true."""
    require_docker()
    return built_image("engine", timeout=1200)


@pytest.fixture(scope="module")
def image_package(engine_image: str) -> Iterator[tuple[Path, str]]:
    """The image form, cached in .cache/packages by the engine's source digest
    and the base image's id (building it takes about 30 s)."""
    base_id = docker_cli("image", "inspect", "--format", "{{.Id}}", engine_image).stdout
    cache = Path(os.environ.get("FACILITY_CACHE_DIR", ".cache"))
    folder = (cache if cache.is_absolute() else REPO / cache) / "packages"
    name = f"reference-image-{engine_digest()[:12]}-{base_id.strip().split(':')[-1][:12]}"
    path = folder / f"{name}.tar.gz"
    if path.is_file() and path.with_suffix(".md5").is_file():
        package = (path, path.with_suffix(".md5").read_text().strip())
    else:
        for stale in folder.glob("reference-image-*"):
            stale.unlink()
        package = build_reference_package(folder, name, form="image")
        path.with_suffix(".md5").write_text(package[1])
    yield package
    leftovers = docker_cli(
        "ps", "-aq", "--filter", f"label=facility.package=reference-image-{RUN}"
    ).stdout.split()
    if leftovers:
        docker_cli("rm", "-f", *leftovers, check=False)


@pytest.mark.docker
def test_image_package_runs_in_docker_analyses_and_is_restarted_after_a_kill(
    api, file_server, image_package, media
):
    ensure_local_node()
    package_id = push(api, file_server, image_package, f"reference-image-{RUN}")
    service_id = create(api, package_id, Env=[{"Name": "ENGINE_FILE_SPEED", "Value": "0"}])["Data"][
        "AlgoServiceID"
    ]
    detail = api.get(f"/CAP/AlgoServices/{service_id}").body["Data"]
    assert detail["Status"] == "RUNNING", detail
    replica = Replica.objects.get(service_id=service_id)
    assert replica.runtime == "docker"
    assert replica.service.image.startswith("facility/reference-engine:")
    inspect = docker_cli(
        "inspect", "--format", "{{.State.Status}} {{.HostConfig.NetworkMode}}", replica.name
    ).stdout.split()
    assert inspect == ["running", "host"]
    assert engine_get(replica, "/Health")["EngineID"] == replica.name  # at 127.0.0.1

    # real analysis inside the container (Debian's av 10, numpy 1.24, OpenCV
    # 4.6): a clip over HTTP from the test's file server, as fast as it goes
    (file_server.root / "vtest_8s.mp4").symlink_to(media / "vtest_8s.mp4")
    url = file_server.url("vtest_8s.mp4")
    engine_post(replica, "/AlgoTasks", task_body("in-docker", url))
    deadline = time.monotonic() + 90
    while (task := engine_get(replica, "/AlgoTasks/in-docker"))["Status"] != "FINISHED":
        assert task["Status"] in ("PENDING", "RUNNING"), task
        assert time.monotonic() < deadline, task
        time.sleep(0.5)
    assert task["Stats"]["FramesDecoded"] == 80  # 8 s at 10 fps
    assert task["Stats"]["FramesAnalysed"] == 40  # 5 fps, none skipped
    assert task["Stats"]["Events"] >= 1  # people found, snapshot encoded
    assert engine_get(replica, "/Events")["Events"][0]["SnapshotBytes"] > 10_000

    # docker kill: the reconciler restarts it and the history shows it
    docker_cli("kill", replica.name)
    deadline = time.monotonic() + 60
    while True:
        jobs.reconcile_services()
        replica.refresh_from_db()
        if replica.state == ReplicaState.RUNNING and replica.restarts == 1:
            break
        assert time.monotonic() < deadline, (replica.state, replica.reason)
        time.sleep(0.3)
    kinds = list(ServiceEvent.objects.filter(service_id=service_id).values_list("kind", flat=True))
    assert "exited" in kinds and "restarted" in kinds
    exited = ServiceEvent.objects.filter(service_id=service_id, kind="exited").first()
    assert exited is not None and "137" in exited.message
    assert engine_get(replica, "/Health")["Tasks"] == 0  # a fresh engine
    assert api.get(f"/CAP/AlgoServices/{service_id}").body["Data"]["Status"] == "RUNNING"
    running = docker_cli("ps", "-q", "--filter", f"name=^{replica.name}$").stdout.split()
    assert len(running) == 1  # replaced, not duplicated

    assert api.delete(f"/CAP/AlgoServices/{service_id}").status_code == 200
    assert not docker_cli("ps", "-aq", "--filter", f"name=^{replica.name}$").stdout.split()


@pytest.mark.docker
def test_the_image_form_runs_the_neural_detector_in_docker(engine_image, media):
    """onnxruntime and the SSDLite model in the engine image (Debian's
    Python 3.11 and numpy 1.24), analysing a clip in the container."""
    from algorithms.management.commands.build_reference_package import build_image
    from algorithms.reference.cache import default_model

    ssdlite_model_path()
    tag = f"facility-test/reference-engine:ssdlite-{engine_digest()[:12]}"
    build_image(engine_image, tag, engine_digest(), default_model())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    name = f"reference-ssd-{RUN}"
    docker_cli(
        "run", "-d", "--name", name, "--network", "host",
        "-e", f"ENGINE_PORT={port}", "-e", "ENGINE_HOST=127.0.0.1",
        "-e", "ENGINE_DETECTOR=ssdlite", "-e", "ENGINE_FILE_SPEED=0",
        "-v", f"{media}:/media:ro", tag,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = requests.get(f"{base}/Health", timeout=2).json()["Data"]
                break
            except requests.RequestException:
                logs = docker_cli("logs", name, check=False)
                assert time.monotonic() < deadline, logs.stdout + logs.stderr
                time.sleep(0.3)
        assert health["Detector"] == "ssdlite"
        body = task_body("ssd-in-docker", "/media/vtest_8s.mp4")
        task = analyse_to_the_end(base, "ssd-in-docker", body)
        assert task["Stats"]["FramesDecoded"] == 80
        assert task["Stats"]["FramesAnalysed"] == 40
        assert task["Stats"]["Events"] >= 1  # people found by the network
    finally:
        docker_cli("rm", "-f", name, check=False)
