"""The docker backend against a real Docker engine: pods are containers of a
locally built test image, with host networking, reached at 127.0.0.1."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from ccp import jobs
from ccp.choices import EngineState
from ccp.models import Engine, Workload

from .conftest import (
    P,
    W,
    all_ready,
    ccp_containers,
    docker_cli,
    health,
    pods,
    scale,
    wait_for,
)
from .conftest import create_workload as create

pytestmark = pytest.mark.docker


def test_scale_one_three_zero_with_real_pods(api, docker_ccp):
    create(api, docker_ccp, replicas=1)
    [pod] = all_ready(api, 1)
    assert pod["Name"].startswith("people-") and len(pod["Name"]) == len("people-") + 5
    assert (pod["HostIP"], pod["PodIP"]) == ("127.0.0.1", "127.0.0.1")
    assert pod["Status"] == "Running"
    assert pod["Image"] == docker_ccp
    assert pod["DeploymentName"] == "people"
    assert pod["Labels"] == [
        {"Name": "app", "Value": "people"},
        {"Name": "tier", "Value": "analysis"},
    ]
    assert pod["Restarts"] == 0 and pod["Age"] >= 0 and pod["NodeName"]
    answer = health(pod["PodIP"], pod["Port"])  # the engine interface, at PodIP:Port
    assert answer["Data"]["Status"] == "READY" and answer["Data"]["EngineID"] == pod["Name"]

    scale(api, 3)
    three = all_ready(api, 3)
    assert len({p["Port"] for p in three}) == 3
    assert pod["Name"] in {p["Name"] for p in three}
    detail = api.post(f"{W}/people", {"ClusterCode": "c1", "Namespace": "default"}).body["Data"]
    assert detail["Replicas"] == 3 and detail["Status"] == "Running 3/3 ready"
    one = api.post(
        f"{P}/{three[1]['Name']}",
        {"ClusterCode": "c1", "Namespace": "default", "WorkloadName": "people"},
    )
    assert one.body["Code"] == "0" and one.body["Data"]["Name"] == three[1]["Name"]
    assert list(one.body["Data"]) == [
        "Name",
        "NodeName",
        "HostIP",
        "PodIP",
        "Port",
        "Status",
        "StatusDesc",
        "Image",
        "Restarts",
        "Age",
        "Ready",
        "DeploymentName",
        "Labels",
    ]

    scale(api, 0)
    assert pods(api) == []
    assert ccp_containers() == []
    assert all(health("127.0.0.1", p["Port"]) is None for p in three)
    detail = api.post(f"{W}/people", {"ClusterCode": "c1", "Namespace": "default"}).body["Data"]
    assert detail["Status"] == "Scaled to 0"


def test_a_killed_container_is_replaced_and_counted(api, docker_ccp):
    create(api, docker_ccp, replicas=2)
    before = {p["Name"]: p for p in all_ready(api, 2)}
    victim = sorted(before)[0]
    docker_cli("kill", victim)
    dead = wait_for(
        lambda: next(
            (p for p in pods(api) if p["Name"] == victim and p["Status"] == "Failed"), None
        )
    )
    assert dead and not dead["Ready"], pods(api)
    jobs.apply_workload(Workload.objects.get().pk)  # what the ccp loop does every few seconds
    after = {p["Name"]: p for p in all_ready(api, 2)}
    assert set(after) == set(before)  # restarted in place, as a kubelet does
    assert after[victim]["Restarts"] == 1
    assert after[victim]["Port"] == before[victim]["Port"]
    assert [p["Restarts"] for n, p in after.items() if n != victim] == [0]


def test_command_args_env_and_delete_forms(api, docker_ccp):
    create(
        api,
        docker_ccp,
        name="cmd",
        Command="python3 -u",
        Args="/app/engine.py",
    )
    [pod] = all_ready(api, 1, "cmd")
    inspect = docker_cli(
        "inspect", "-f", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", pod["Name"]
    )
    assert inspect.stdout.strip() == '["python3","-u"] ["/app/engine.py"]'
    # 表21 with query parameters
    gone = api.call("delete", f"{W}/cmd?ClusterCode=c1&Namespace=default")
    assert gone.status_code == 200, gone.body
    assert gone.body["Message"] == f"deleted workload default/cmd; pods removed: {pod['Name']}"
    assert ccp_containers() == []
    # 表21 for POST-only clients
    create(api, docker_ccp, name="post-del")
    all_ready(api, 1, "post-del")
    gone = api.post(f"{W}/post-del:delete", {"ClusterCode": "c1", "Namespace": "default"})
    assert gone.status_code == 200 and "pods removed: post-del-" in gone.body["Message"]
    assert ccp_containers() == [] and not Workload.objects.exists()


def test_the_reconcile_loop_keeps_replicas_and_removes_orphans(api, docker_ccp, settings):
    settings.FACILITY_QUEUE_MODE = "manual"
    create(api, docker_ccp, name="looped", replicas=2)
    assert pods(api, "looped") == []
    counts = jobs.reconcile_workloads()
    assert counts == {"workloads": 1, "unmet": 0}
    all_ready(api, 2, "looped")
    Workload.objects.all().delete()  # deleted while the facility was away
    jobs.reconcile_workloads()
    assert ccp_containers() == []


@pytest.fixture
def pushed_image(docker_ccp: str, tmp_path: Path) -> Any:
    """A `docker save` tar of a copy of the test image, tagged for the push
    tests, and that tag removed from the engine (the push must load it)."""
    ref = "facility-test/ccp-pushed:1"
    docker_cli("tag", docker_ccp, ref)
    tar = tmp_path / "engine.tar"
    docker_cli("save", "-o", str(tar), ref)
    docker_cli("rmi", ref)
    yield ref, tar
    docker_cli("rmi", ref, check=False)


def test_engine_push_of_an_image_tar_then_workload_then_delete(api, pushed_image, file_server):
    ref, tar = pushed_image
    url = file_server.add("engine.tar", tar.read_bytes())
    response = api.post(
        "/CCP/AlgoService/Engines",
        {
            "Url": url,
            "FileType": "Engine",
            "AlgoFilePackageID": "eng-1",
            "AuthAddress": "127.0.0.1:8808",
        },
    )
    assert response.status_code == 200, response.body
    engine = Engine.objects.get()
    assert (engine.state, engine.image, engine.reason) == (EngineState.READY, ref, "")
    create(api, ref, name="pushed")
    [pod] = all_ready(api, 1, "pushed")
    env = docker_cli("inspect", "-f", "{{json .Config.Env}}", pod["Name"]).stdout
    assert "AUTH_ADDRESS=127.0.0.1:8808" in env
    refused = api.call("delete", "/CCP/AlgoService/Engines/eng-1")
    assert refused.status_code == 409 and "default/pushed" in refused.body["Message"]
    api.call("delete", f"{W}/pushed", {"ClusterCode": "c1", "Namespace": "default"})
    removed = api.call("delete", "/CCP/AlgoService/Engines/eng-1")
    assert removed.status_code == 200, removed.body
    assert removed.body["Message"] == f"removed engine eng-1, image {ref}"
    assert docker_cli("image", "inspect", ref, check=False).returncode != 0


def _package(tar: Path) -> bytes:
    manifest = b"Name: people\nVersion: '1.0'\nBin:\n  Type: image\n  LocalUri: bin/engine.tar\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("algo.yaml")
        info.size = len(manifest)
        archive.addfile(info, io.BytesIO(manifest))
        archive.add(tar, arcname="bin/engine.tar")
    return buffer.getvalue()


def test_engine_push_of_a_file_package(api, pushed_image, file_server):
    ref, tar = pushed_image
    url = file_server.add("package.tar.gz", _package(tar))
    response = api.post(
        "/CCP/AlgoService/Engines",
        {"Url": url, "FileType": "FilePackage", "AlgoFilePackageID": "pkg-1"},
    )
    assert response.status_code == 200, response.body
    engine = Engine.objects.get()
    assert (engine.state, engine.image) == (EngineState.READY, ref), engine.reason


def test_a_reference_from_a_public_registry_is_not_pulled(api, settings):
    api.post(
        "/CCP/AlgoService/Engines",
        {"Url": "docker.io/library/busybox:1", "FileType": "Engine", "AlgoFilePackageID": "pub"},
    )
    engine = Engine.objects.get()
    assert engine.state == EngineState.FAILED
    assert "CCP_PULL_REGISTRIES" in engine.reason


def test_a_loopback_registry_reference_is_pulled_and_failures_are_reported(api, docker_ccp):
    # nothing listens on this port: the pull is tried (loopback is allowed) and fails
    api.post(
        "/CCP/AlgoService/Engines",
        {
            "Url": "127.0.0.1:1/provider-human_detect:1.3.0",
            "FileType": "Engine",
            "AlgoFilePackageID": "lo",
        },
    )
    engine = Engine.objects.get()
    assert engine.state == EngineState.FAILED
    assert "docker pull 127.0.0.1:1/provider-human_detect:1.3.0 failed" in engine.reason
