"""Algorithm services (表33–36) with real replicas: stub engines run as
local processes and answer the engine interface on loopback."""

from __future__ import annotations

import os
import signal
import time

import psutil
import pytest
import requests

from algorithms.models import AlgoFilePackage
from compute.models import Cluster, Node, XpuCard
from services import jobs
from services.choices import ReplicaState
from services.models import AlgoService, Replica, ServiceEvent
from services.runtime.registry import get_runtime
from tests.support.examples import example


def engine_health(replica: Replica) -> dict:
    response = requests.get(f"{replica.engine_url}/Health", timeout=3)
    return response.json()["Data"]


def engine_pid(replica: Replica) -> int:
    return engine_health(replica)["Pid"]


def test_created_service_runs_and_its_engine_answers(engines, api):
    engines.package()
    service_id = engines.create(Replicas=2, Env=[{"Name": "K2", "Value": "set-by-platform"}])[
        "Data"
    ]["AlgoServiceID"]

    detail = engines.detail(service_id)
    assert detail["Status"] == "RUNNING", detail
    assert detail["Replicas"] == 2
    assert detail["XpuType"] == "CPU"
    assert detail["Env"] == [{"Name": "K2", "Value": "set-by-platform"}]
    assert len(detail["ReplicasDetail"]) == 2
    node = Node.objects.get(is_local=True)
    assert detail["ReplicasDetail"][0] == {"NodeHost": node.hostname, "NodeIpv4": node.ip}

    replicas = list(Replica.objects.filter(service_id=service_id))
    assert {r.state for r in replicas} == {ReplicaState.RUNNING}
    health = engine_health(replicas[0])
    assert health["EngineID"] == replicas[0].name
    assert health["Env"]["K1"] == "default-1"  # the package's default
    assert health["Env"]["K2"] == "set-by-platform"
    assert health["Capacity"] == {"Stream_Video_Quota": 3}
    assert len({r.port for r in replicas}) == 2
    assert AlgoFilePackage.objects.get(pk="stub-1").status == 3  # has run


def test_undeclared_env_is_refused_by_name(engines):
    engines.package()
    body = engines.create(Env=[{"Name": "NOT_DECLARED", "Value": "x"}], expect=400)
    assert "Env[0].Name: NOT_DECLARED is not declared" in body["Message"]
    assert not AlgoService.objects.exists()


def test_unknown_host_name_is_refused(engines):
    engines.package()
    body = engines.create(HostName="10.9.9.9", expect=400)
    assert "HostName" in body["Message"]


def test_missing_card_type_is_refused_saying_what_is_missing(engines):
    engines.package()
    body = engines.create(XpuType="NVIDIA_T4", expect=400)
    assert "no NVIDIA_T4 card" in body["Message"]


def test_card_quota_is_binpacked_and_exhaustion_is_refused(engines, settings):
    engines.package()
    cluster = Cluster.objects.create(code="gpu-cluster")
    node = Node.objects.create(cluster=cluster, name="gpu-1", ip="127.0.0.2", hostname="gpu-1")
    XpuCard.objects.create(node=node, index=0, xpu_type="NVIDIA_T4", memory_gb=16)
    settings.FACILITY_QUEUE_MODE = "manual"  # placement only: gpu-1 is not this machine

    first = engines.create(XpuType="NVIDIA T4", Replicas=2)["Data"]["AlgoServiceID"]
    replicas = Replica.objects.filter(service_id=first)
    assert [r.quota for r in replicas] == [0.5, 0.5]
    assert {r.card.index for r in replicas} == {0}
    assert engines.detail(first)["XpuQuota"] == 0.5

    body = engines.create(XpuType="NVIDIA_T4", expect=400)
    assert "not enough free NVIDIA_T4 quota" in body["Message"]


def test_package_that_is_not_complete_is_refused(engines, settings, api):
    settings.FACILITY_QUEUE_MODE = "manual"
    api.post(
        "/CAP/AlgoFilePackages", {"AlgoFilePackageID": "waiting", "Url": "http://127.0.0.1:9/x"}
    )
    body = engines.create(package_id="waiting", expect=409)
    assert "cannot run yet: Status 0" in body["Message"]


def test_killed_replica_is_restarted_and_the_restart_is_recorded(engines):
    engines.package()
    service_id = engines.create()["Data"]["AlgoServiceID"]
    replica = Replica.objects.get(service_id=service_id)
    pid = engine_pid(replica)
    os.kill(pid, signal.SIGKILL)
    psutil.Process(pid).wait(timeout=5) if psutil.pid_exists(pid) else None

    deadline = time.monotonic() + 20
    while True:
        jobs.reconcile_services()
        replica.refresh_from_db()
        if replica.state == ReplicaState.RUNNING and replica.restarts == 1:
            break
        assert time.monotonic() < deadline, (replica.state, replica.reason)
        time.sleep(0.2)
    assert engine_pid(replica) != pid
    kinds = list(ServiceEvent.objects.filter(service_id=service_id).values_list("kind", flat=True))
    assert "exited" in kinds and "restarted" in kinds
    assert engines.detail(service_id)["Status"] == "RUNNING"


def test_reconcile_after_a_facility_restart_readopts_without_duplicates(engines):
    engines.package()
    service_id = engines.create(Replicas=2)["Data"]["AlgoServiceID"]
    before = {r.name: engine_pid(r) for r in Replica.objects.filter(service_id=service_id)}

    # a new runtime object knows only what survived on disk and in the processes
    managed = get_runtime("local").list_managed()
    assert len(managed) == 2
    for _ in range(3):
        jobs.reconcile_services()

    after = {r.name: engine_pid(r) for r in Replica.objects.filter(service_id=service_id)}
    assert after == before
    assert len(get_runtime("local").list_managed()) == 2
    assert Replica.objects.filter(service_id=service_id, restarts=0).count() == 2


def test_deleting_a_service_stops_it_and_leaves_another_running(engines, api):
    engines.package()
    doomed = engines.create()["Data"]["AlgoServiceID"]
    keeper = engines.create()["Data"]["AlgoServiceID"]
    doomed_replica = Replica.objects.get(service_id=doomed)
    keeper_replica = Replica.objects.get(service_id=keeper)
    doomed_pid = engine_pid(doomed_replica)
    keeper_pid = engine_pid(keeper_replica)

    assert api.delete(f"/CAP/AlgoServices/{doomed}").status_code == 200

    assert not psutil.pid_exists(doomed_pid) or psutil.Process(doomed_pid).status() == "zombie"
    assert engine_pid(keeper_replica) == keeper_pid
    assert api.get(f"/CAP/AlgoServices/{doomed}").status_code == 404
    assert engines.detail(keeper)["Status"] == "RUNNING"
    assert api.delete(f"/CAP/AlgoServices/{doomed}").status_code == 200  # repeat: success
    assert api.delete("/CAP/AlgoServices/svc-never-was").status_code == 404


def test_search_filters_by_package_and_xpu_type_with_paging(engines, api):
    engines.package("stub-1")
    engines.package("stub-2")
    for package_id in ("stub-1", "stub-1", "stub-2"):
        engines.create(package_id=package_id)
    data = api.post(
        "/CAP/AlgoServices:search", {"AlgoFilePackageID": "stub-1", "PageSize": 1}
    ).body["Data"]
    assert data["TotalSize"] == 2
    assert len(data["Records"]) == 1
    assert set(data["Records"][0]) == {
        "Env",
        "Replicas",
        "XpuType",
        "AlgoFilePackageID",
        "AlgoServiceID",
    }
    assert api.post("/CAP/AlgoServices:search", {"XpuType": "cpu"}).body["Data"]["TotalSize"] == 3
    none = api.post("/CAP/AlgoServices:search", {"XpuType": "NVIDIA_T4"}).body["Data"]
    assert none["TotalSize"] == 0


def test_example_j1_is_answered_with_a_clear_error_when_the_package_is_absent(api):
    response = api.post("/CAP/AlgoServices", example("J.1-d"))
    assert response.status_code == 404
    assert "no package 1101150192508600000120231012203630000102" in response.body["Message"]


def test_example_j3_is_accepted(api):
    response = api.post("/CAP/AlgoServices:search", example("J.3-d"))
    assert response.status_code == 200
    assert response.body["Data"]["PageSize"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"XpuType": "CPU", "AlgoFilePackageID": "p"}, "Replicas: is required"),
        (
            {"Replicas": 0, "XpuType": "CPU", "AlgoFilePackageID": "p"},
            "Replicas: must be at least 1",
        ),
        (
            {"Replicas": "1", "XpuType": "CPU", "AlgoFilePackageID": "p"},
            "Replicas: must be an integer",
        ),
        ({"Replicas": 1, "XpuType": "X" * 21, "AlgoFilePackageID": "p"}, "XpuType: at most 20"),
        ({"Replicas": 1, "XpuType": "CPU"}, "AlgoFilePackageID: is required"),
        (
            {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": "p", "HostName": "h" * 51},
            "HostName: at most 50",
        ),
        (
            {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": "p", "Env": [{"Value": "x"}]},
            "Env[0].Name: is required",
        ),
    ],
)
def test_service_request_rules_are_enforced(api, body, message):
    response = api.post("/CAP/AlgoServices", body)
    assert response.status_code == 400
    assert message in response.body["Message"]
