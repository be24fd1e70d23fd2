"""/CCP validation and the standard's example bodies (表F.1 d, 表G.1 d, G.4 d,
G.6 d, G.8 d, G.16 d) accepted as written."""

from __future__ import annotations

from typing import Any

import pytest

from ccp.choices import EngineState
from ccp.models import Engine, Workload
from tests.support.examples import example

from .conftest import ccp_containers

W = "/CCP/AlgoService/Workloads"


def body(**overrides: Any) -> dict[str, Any]:
    base = {
        "ClusterCode": "c1",
        "Namespace": "default",
        "Name": "people",
        "Labels": {"app": "people"},
        "LabelSelector": {"app": "people"},
        "ContainerName": "engine",
        "Image": "facility-test/none:1",
        "XpuType": "",
        "Cpu": 1,
        "Memory": 1,
        "Xpu": 0,
        "Replicas": 0,
    }
    base.update(overrides)
    return base


@pytest.fixture(autouse=True)
def _no_backend_side_effects(settings: Any) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"  # nothing runs: these tests are about the API


def test_engine_push_example_is_accepted_as_written(api):
    response = api.post("/CCP/AlgoService/Engines", example("F.1-d"))
    assert response.status_code == 200, response.body
    assert response.body["Code"] == "0"
    engine = Engine.objects.get()
    assert engine.url == "127.0.0.1:5000/provider-human_detect:1.3.0"
    assert engine.auth_address == "127.0.0.1:8808,127.0.0.2:8808"
    assert engine.state == EngineState.PENDING


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"FileType": "Tarball"}, "FileType"),
        ({"Url": "not a reference!"}, "Url"),
        ({"FileType": "FilePackage"}, "Url"),
        ({"AuthAddress": "nohost"}, "AuthAddress"),
        ({"AlgoFilePackageID": "x" * 41}, "AlgoFilePackageID"),
    ],
)
def test_bad_engine_pushes_are_refused_by_name(api, change, field):
    response = api.post("/CCP/AlgoService/Engines", {**example("F.1-d"), **change})
    assert response.status_code == 400
    assert response.body["Code"] == "40000"
    assert field in response.body["Message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"Name": "Bad_Name"}, "Name"),
        ({"Name": "x" * 58}, "Name"),
        ({"Namespace": "-ns"}, "Namespace"),
        ({"ContainerName": "under_score"}, "ContainerName"),
        ({"Labels": {"bad key!": "v"}}, "Labels"),
        ({"LabelSelector": {"app": "other"}}, "LabelSelector"),
        ({"Replicas": -1}, "Replicas"),
        ({"Xpu": 0.25}, "Xpu"),
        ({"Memory": "5"}, "Memory"),
        ({"Command": "'unclosed"}, "Command"),
    ],
)
def test_bad_workloads_are_refused_by_name(api, change, field):
    response = api.post(W, body(**change))
    assert response.status_code == 400, response.body
    assert response.body["Code"] == "40000"
    assert field in response.body["Message"]
    assert not Workload.objects.exists()


def test_create_then_duplicate_is_a_conflict(api):
    first = api.post(W, body(Xpu=0.5))
    assert first.body == {
        "Code": "0",
        "Message": "success",
        "Data": {"WorkloadName": "people", "Namespace": "default"},
        "RequestID": first.body["RequestID"],
    }
    assert Workload.objects.get().xpu == 0.5
    again = api.post(W, body())
    assert again.status_code == 409
    assert again.body["Code"] == "40900"


def test_a_body_without_image_lists_and_needs_cluster_code(api):
    response = api.post(W, {})
    assert response.status_code == 400
    assert "ClusterCode" in response.body["Message"]


def test_list_sorts_pages_and_echoes_the_page_request(api):
    for name, replicas in (("b-one", 2), ("a-two", 5), ("c-three", 1)):
        assert api.post(W, body(Name=name, Replicas=replicas)).status_code == 200
    api.post(W, body(Name="elsewhere", Namespace="other"))
    page = {
        "PageNumber": 1,
        "PageSize": 2,
        "OrderList": [{"Property": "Replicas", "Direction": "desc"}],
    }
    data = api.post(W, {"ClusterCode": "c1", "Namespace": "default", "PAgeRequest": page}).body[
        "Data"
    ]
    assert list(data) == ["PAgeRequest", "PageContent", "TotalSize"]
    assert data["PAgeRequest"] == page
    assert data["TotalSize"] == 3
    assert [w["WorkloadName"] for w in data["PageContent"]] == ["a-two", "b-one"]
    assert list(data["PageContent"][0]) == ["Namespace", "WorkloadName", "Replicas", "CreatedDate"]
    assert len(data["PageContent"][0]["CreatedDate"]) == 23
    page2 = {**page, "PageNumber": 2}
    data = api.post(W, {"ClusterCode": "c1", "PAgeRequest": page2}).body["Data"]
    assert [w["WorkloadName"] for w in data["PageContent"]] == ["c-three"]
    by_name = {"PageNumber": 1, "PageSize": 10, "OrderList": [{"Property": "WorkloadName"}]}
    data = api.post(W, {"ClusterCode": "c1", "PAgeRequest": by_name}).body["Data"]
    assert [w["WorkloadName"] for w in data["PageContent"]] == ["a-two", "b-one", "c-three"]
    data = api.post(W, {"ClusterCode": "c1", "WorkloadName": "one"}).body["Data"]
    assert [w["WorkloadName"] for w in data["PageContent"]] == ["b-one"]
    bad = {"PageNumber": 1, "PageSize": 1, "OrderList": [{"Property": "Colour"}]}
    response = api.post(W, {"ClusterCode": "c1", "PAgeRequest": bad})
    assert response.status_code == 400
    assert "OrderList[0].Property" in response.body["Message"]


def test_scale_and_detail_of_unknown_workloads_are_404(api):
    response = api.call(
        "put", f"{W}/nobody", {"ClusterCode": "c", "Namespace": "default", "Replicas": 1}
    )
    assert response.status_code == 404
    assert response.body["Code"] == "40400"
    response = api.post(f"{W}/nobody", {"ClusterCode": "c", "Namespace": "default"})
    assert response.status_code == 404


def test_engine_delete_unknown_is_404_and_refused_while_used(api):
    assert api.call("delete", "/CCP/AlgoService/Engines/none").status_code == 404
    Engine.objects.create(
        package_id="e1", file_type="Engine", url="x", image="facility-test/used:1", state="ready"
    )
    api.post(W, body(Image="facility-test/used:1"))
    response = api.call("delete", "/CCP/AlgoService/Engines/e1")
    assert response.status_code == 409
    assert "default/people" in response.body["Message"]
    assert Engine.objects.filter(pk="e1").exists()


@pytest.mark.docker
def test_workload_examples_are_accepted_as_written(api, docker_ccp, settings):
    settings.FACILITY_QUEUE_MODE = "sync"  # the backend really sees them
    created = api.post(W, example("G.1-d"))
    assert created.status_code == 200, created.body
    assert created.body["Data"] == {"WorkloadName": "xxxx", "Namespace": "default"}
    workload = Workload.objects.get(name="xxxx")
    assert (workload.replicas, workload.xpu_type, workload.cpu, workload.memory) == (
        3,
        "NVIDIA_T4",
        3,
        5,
    )
    # no NVIDIA_T4 on this Docker node (and Cpu 3 may be too many): Pending, with why
    assert workload.reason.startswith("Unschedulable")
    assert api.call("put", f"{W}/xxxx", example("G.6-d")).status_code == 200
    listed = api.post(W, {**example("G.8-d"), "WorkloadName": "xxxx"}).body
    assert listed["Data"]["TotalSize"] == 1
    assert api.post(W, example("G.8-d")).body["Data"]["TotalSize"] == 0  # "xxxxx"
    detail = api.post(f"{W}/xxxx", example("G.14-d")).body["Data"]
    assert list(detail) == [
        "Namespace",
        "WorkloadName",
        "XpuType",
        "Xpu",
        "CpuType",
        "Cpu",
        "Replicas",
        "XpuMemory",
        "Memory",
        "CreatedDate",
        "Status",
        "Image",
    ]
    assert detail["Status"].startswith("Pending: Unschedulable")
    pods = api.post("/CCP/AlgoService/Pods", example("G.16-d"))
    assert pods.status_code == 200, pods.body
    assert pods.body["Data"] == {"Pods": []}
    assert ccp_containers() == []
    gone = api.call("delete", f"{W}/xxxx", example("G.4-d"))
    assert gone.status_code == 200, gone.body
    assert gone.body["Message"] == "deleted workload default/xxxx; it had no pods"
    assert not Workload.objects.exists()
