from __future__ import annotations

from datetime import timedelta

import psutil
import pytest
from django.utils import timezone

from compute import jobs
from compute.models import Node
from compute.probes import GIB
from compute.probes.host import HostProbe
from tests.compute.fake_pynvml import FakeCard
from tests.compute.helpers import card, example, get_with_body, make_node, record

pytestmark = pytest.mark.usefixtures("compute_settings")


def test_cad_status_agrees_with_psutil(api, settings) -> None:
    settings.FACILITY_DISK_PATH = "/"
    assert jobs.sample_local_node(force=True)
    response = api.get("/CAD/Status")

    assert response.status_code == 200
    assert response.body["Code"] == 0
    data = response.body["Data"]
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage("/")
    assert data["IsOnline"] is True
    assert data["Cpu"] == psutil.cpu_count(logical=True)
    assert data["Memory"] == round(memory.total / GIB)
    assert data["MemoryUsed"] == pytest.approx((memory.total - memory.available) / GIB, abs=0.5)
    assert data["Disk"] == round(disk.total / GIB)
    assert data["DiskUsed"] == pytest.approx(disk.used / GIB, abs=1)
    assert 0 <= data["CpuUtilization"] <= 1
    assert data["CpuType"] in ("x86", "arm")
    assert 0 < len(data["DeviceID"]) <= 20
    assert data["XpuMonitors"] == [] and data["AlgoServiceMonitors"] == []
    ((key, value),) = data["MemoryUsedList"][0].items()
    assert key.isdigit() and value == pytest.approx(data["MemoryUsed"], abs=0.01)


def test_status_is_read_from_stored_samples_never_measured(api, monkeypatch) -> None:
    jobs.sample_local_node(force=True)

    def refuse(self):
        raise AssertionError("a request measured the machine")

    monkeypatch.setattr(HostProbe, "read", refuse)
    assert api.get("/CAD/Status").status_code == 200
    assert api.get("/CAP/Status").status_code == 200
    assert api.get("/CCP/Cluster/Monitors/cluster-1").status_code == 200


def test_local_node_without_samples_is_offline(api) -> None:
    data = api.get("/CAD/Status").body["Data"]
    assert data["IsOnline"] is False
    assert data["CpuUtilizationList"] == [] and data["CpuUtilization"] == 0


def test_trends_are_ordered_keyed_by_ms_and_cover_the_window(api, settings) -> None:
    settings.FACILITY_TREND_POINTS = 360  # 10 s buckets: one per sample
    node = make_node()
    now = timezone.now()
    # an hour and a half of samples at 60 s, newest first to prove ordering
    for minutes in range(90, -1, -1):
        record(node, now - timedelta(minutes=minutes), cpu=minutes / 100, memory=minutes)
    data = api.post(f"/CCP/Node/Monitors/{node.pk}", {}).body["Data"]

    trend = data["CpuUtilizationList"]
    keys = [int(next(iter(point))) for point in trend]
    assert all(len(point) == 1 for point in trend)
    assert keys == sorted(keys)
    window_start_ms = (now - timedelta(seconds=3600)).timestamp() * 1000
    # the window's first minute to its last: samples 59 … 0 minutes old
    assert window_start_ms - 10_000 <= keys[0] <= window_start_ms + 70_000
    assert keys[-1] <= now.timestamp() * 1000
    assert len(trend) == 60
    assert next(iter(trend[0].values())) == pytest.approx(0.59)
    assert next(iter(trend[-1].values())) == pytest.approx(0.0)
    assert len(data["MemoryUsedList"]) == len(data["DiskUsedList"]) == 60


def test_trend_points_average_samples_of_a_bucket(api, settings) -> None:
    settings.FACILITY_TREND_POINTS = 6  # 10-minute buckets
    node = make_node()
    now = timezone.now()
    for seconds in range(0, 3600, 10):
        record(node, now - timedelta(seconds=seconds), cpu=0.5)
    trend = api.post(f"/CCP/Node/Monitors/{node.pk}", {}).body["Data"]["CpuUtilizationList"]
    assert 6 <= len(trend) <= 7
    assert all(next(iter(point.values())) == pytest.approx(0.5) for point in trend)


def test_node_that_stops_reporting_goes_offline_with_its_last_values(api, settings) -> None:
    node = make_node()
    record(node, timezone.now() - timedelta(seconds=30), cpu=0.4, memory=12)
    assert api.post(f"/CCP/Node/Monitors/{node.pk}", {}).body["Data"]["IsOnline"] is True

    Node.objects.filter(pk=node.pk).update(
        last_seen_at=timezone.now() - timedelta(seconds=settings.FACILITY_NODE_OFFLINE_AFTER_S + 1)
    )
    data = api.post(f"/CCP/Node/Monitors/{node.pk}", {}).body["Data"]
    assert data["IsOnline"] is False
    assert data["CpuUtilization"] == pytest.approx(0.4)
    assert data["MemoryUsed"] == pytest.approx(12)
    ops = next(o for o in api.get("/CAP/Status").body["Data"]["OpsInfo"] if o["Ip"] == "127.0.0.2")
    assert ops["IsOnline"] is False and ops["CpuUse"] == pytest.approx(40)


def test_node_monitor_accepts_the_standards_example_body(api) -> None:
    body = example("E.4-d-NodeMonitorRequest.json")  # {"ClusterCode": "xxx", "NodeID": "13"}
    make_node(name="node-13", cluster=body["ClusterCode"], pk=int(body["NodeID"]))
    response = api.post(f"/CCP/Node/Monitors/{body['NodeID']}", body)

    assert response.status_code == 200, response.body
    assert response.body["Code"] == "0"
    data = response.body["Data"]
    assert data["ID"] == 13 and data["Ip"] == "127.0.0.2" and data["Cpu"] == 8
    assert data["Memory"] == 32 and data["Disk"] == 500 and data["CpuType"] == "x86"
    for name in ("CpuUtilizationList", "MemoryUsedList", "DiskUsedList", "XpuMonitors"):
        assert data[name] == []


def test_node_monitor_finds_a_node_by_name(api) -> None:
    node = make_node(name="edge-7")
    assert api.post("/CCP/Node/Monitors/edge-7", {}).body["Data"]["ID"] == node.pk


def test_cluster_monitor_accepts_the_standards_example(api) -> None:
    body = example("E.1-c-ClusterMonitor-request.json")  # {"ClusterCode": "cluster-1"}
    response = get_with_body(api, f"/CCP/Cluster/Monitors/{body['ClusterCode']}", body)
    assert response.status_code == 200, response.body
    assert response.body["Code"] == "0"
    assert response.body["Data"]["Cpu"] == psutil.cpu_count(logical=True)


def test_cluster_monitor_sums_its_nodes(api) -> None:
    now = timezone.now()
    first = make_node("a", cluster="c2", cpu_cores=4, memory_gb=16, disk_gb=100)
    second = make_node("b", cluster="c2", cpu_cores=12, memory_gb=48, disk_gb=300)
    record(first, now, cpu=1.0, memory=10, disk=50, cards=[card(0, 0.2, 2.0)])
    record(second, now, cpu=0.0, memory=20, disk=70)
    data = api.get("/CCP/Cluster/Monitors/c2").body["Data"]

    assert (data["Cpu"], data["Memory"], data["Disk"]) == (16, 64, 400)
    assert data["CpuUtilization"] == pytest.approx(0.25)  # weighted by cores
    assert data["MemoryUsed"] == pytest.approx(30) and data["DiskUsed"] == pytest.approx(120)
    assert data["ClusterName"] == "c2" and isinstance(data["ID"], int)
    assert [x["XpuType"] for x in data["XpuMonitors"]] == ["NVIDIA_T4"]
    assert next(iter(data["CpuUtilizationList"][-1].values())) == pytest.approx(0.25)
    assert next(iter(data["MemoryUsedList"][-1].values())) == pytest.approx(30)


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", "/CCP/Cluster/Monitors/no-such-cluster"), ("post", "/CCP/Node/Monitors/999")],
)
def test_unknown_cluster_or_node_is_a_404_envelope(api, method, path) -> None:
    response = getattr(api, method)(path)
    assert response.status_code == 404
    assert response.body["Code"] == "40400"
    assert "no " in response.body["Message"] and response.body["RequestID"]


def test_node_monitor_refuses_a_body_that_names_another_node(api) -> None:
    node = make_node()
    response = api.post(f"/CCP/Node/Monitors/{node.pk}", {"NodeID": "12345"})
    assert response.status_code == 400 and "NodeID" in response.body["Message"]
    response = api.post(f"/CCP/Node/Monitors/{node.pk}", {"ClusterCode": "elsewhere"})
    assert response.status_code == 404 and "elsewhere" in response.body["Message"]


def test_cards_from_nvml_appear_in_every_status(api, fake_gpus) -> None:
    fake_gpus(
        FakeCard(
            name="Tesla T4", memory_total=16 * GIB, memory_used=4 * GIB, utilization_percent=30
        ),
        FakeCard(name="Tesla T4", uuid="GPU-2", memory_used=GIB, utilization_percent=10),
    )
    jobs.sample_local_node(force=True)

    cad = api.get("/CAD/Status").body["Data"]
    assert [x["XpuType"] for x in cad["XpuMonitors"]] == ["NVIDIA_T4", "NVIDIA_T4"]
    first = cad["XpuMonitors"][0]
    assert first["XpuMemory"] == 16 and first["XpuMemoryUsed"] == pytest.approx(4)
    assert first["XpuUtilization"] == pytest.approx(0.3)
    assert next(iter(first["XpuUtilizationList"][0].values())) == pytest.approx(0.3)

    cap = api.get("/CAP/Status").body
    assert cap["Code"] == 0
    basic, ops = cap["Data"]["BasicInfo"][0], cap["Data"]["OpsInfo"][0]
    assert basic["Xpu"] == 2 and basic["XpuType"] == "NVIDIA_T4"
    assert ops["XpuUse"] == pytest.approx(20) and ops["XpuUseDetails"] == []


def test_cap_status_reports_every_node_in_percent(api) -> None:
    node = make_node(cpu_cores=8, memory_gb=32, disk_gb=500, os="debian 12")
    record(node, timezone.now(), cpu=0.25, memory=8, disk=125)
    response = api.get("/CAP/Status")
    assert response.body["Code"] == 0
    basic = response.body["Data"]["BasicInfo"]
    ops = response.body["Data"]["OpsInfo"]
    assert len(basic) == len(ops) == 2  # the local node registers itself
    mine = next(b for b in basic if b["HostName"] == "edge-1")
    assert mine == {
        "Ip": "127.0.0.2",
        "HostName": "edge-1",
        "Cpu": 8,
        "CpuType": "x86",
        "Xpu": 0,
        "XpuType": "CPU",
        "Memory": 32.0,
        "Disk": 500.0,
        "OS": "debian 12",
    }
    mine = next(o for o in ops if o["HostName"] == "edge-1")
    assert mine["CpuUse"] == pytest.approx(25) and mine["MemoryUse"] == pytest.approx(25)
    assert mine["DiskUsed"] == pytest.approx(25) and mine["XpuUse"] == 0


def test_status_interfaces_need_the_platform_credential(anonymous_api) -> None:
    assert anonymous_api.get("/CAD/Status").status_code == 401
    assert anonymous_api.get("/CAP/Status").status_code == 401
