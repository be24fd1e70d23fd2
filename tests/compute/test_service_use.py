"""Per-service monitors (表A.3 AlgoServiceMonitors) and card quotas (表H.4
XpuUseDetails), from Replica rows and the GPU processes of stored samples."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import psutil
import pytest
from django.utils import timezone

from algorithms.models import AlgoFilePackage
from compute import actions, jobs
from compute.models import Node, XpuCard
from compute.probes import GIB
from compute.probes.owners import container_of, process_owner
from compute.service_use import replica_owns
from services.choices import ReplicaState
from services.models import AlgoService, Replica
from tests.compute.fake_pynvml import FakeCard
from tests.compute.helpers import make_node, reading

pytestmark = pytest.mark.usefixtures("compute_settings")

CONTAINER = "3f4e5d6c7b8a" + "0" * 52


def make_service(service_id: str, package_id: str = "", xpu_type: str = "NVIDIA_T4") -> Any:
    package, _ = AlgoFilePackage.objects.get_or_create(
        package_id=package_id or f"pkg-{service_id}", defaults={"url": "http://127.0.0.1:9/p.tar"}
    )
    return AlgoService.objects.create(
        service_id=service_id, package=package, replicas=1, xpu_type=xpu_type, runtime="local"
    )


def make_replica(
    service: Any,
    node: Node,
    card: XpuCard | None = None,
    *,
    index: int = 0,
    quota: float = 0.5,
    runtime: str = "local",
    ref: str = "",
    state: str = ReplicaState.RUNNING,
) -> Replica:
    return Replica.objects.create(
        service=service,
        index=index,
        name=f"{service.service_id}-{index}",
        node=node,
        card=card,
        quota=quota,
        port=20000 + index,
        runtime=runtime,
        handle_ref=ref,
        state=state,
    )


def gpu_card(index: int, used: float, utilization: float, processes: list[dict[str, Any]]) -> Any:
    from compute.probes import CardReading

    return CardReading(
        index=index,
        uuid=f"GPU-{index}",
        xpu_type="NVIDIA_T4",
        memory_gb=16.0,
        memory_used_gb=used,
        utilization=utilization,
        processes=processes,
    )


# --- the mapping --------------------------------------------------------------


def test_a_local_replica_owns_its_engine_and_the_engines_children() -> None:
    ref = "4242:1700000000.25"
    assert replica_owns("local", ref, {"Pid": 4242, "Started": 1700000000.25})
    assert replica_owns("local", ref, {"Pid": 4242})  # start time not recorded
    # the pid was reused by another process: not the engine
    assert not replica_owns("local", ref, {"Pid": 4242, "Started": 1700009999.0})
    assert replica_owns("local", ref, {"Pid": 5000, "Parents": [4300, 4242, 17]})
    assert not replica_owns("local", ref, {"Pid": 5000, "Parents": [4300]})
    assert not replica_owns("local", "", {"Pid": 4242})
    # a docker replica's id never matches by pid
    assert not replica_owns("docker", ref, {"Pid": 4242})


def test_a_docker_replica_owns_the_processes_of_its_container() -> None:
    process = {"Pid": 999, "Container": CONTAINER}
    assert replica_owns("docker", CONTAINER, process)
    assert replica_owns("docker", CONTAINER[:12], process)  # short ids
    assert not replica_owns("docker", "a" * 64, process)
    assert not replica_owns("docker", CONTAINER, {"Pid": 999})
    assert not replica_owns("local", CONTAINER, process)


def test_container_ids_are_read_from_cgroup_v1_and_v2(tmp_path) -> None:
    for pid, text in (
        (1, f"12:memory:/docker/{CONTAINER}\n0::/\n"),
        (2, f"0::/system.slice/docker-{CONTAINER}.scope\n"),
        (3, "0::/user.slice/user-1000.slice/session-2.scope\n"),
    ):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cgroup").write_text(text)
    assert container_of(1, str(tmp_path)) == CONTAINER
    assert container_of(2, str(tmp_path)) == CONTAINER
    assert container_of(3, str(tmp_path)) == ""
    assert container_of(4, str(tmp_path)) == ""


def test_the_owner_of_a_live_process_is_recorded() -> None:
    owner = process_owner(os.getpid())
    assert owner["Started"] == pytest.approx(psutil.Process().create_time(), abs=0.01)
    assert os.getppid() in owner.get("Parents", [os.getppid()]) or os.getppid() <= 1
    assert process_owner(2**22 + 12345) == {}  # no such process


# --- XpuUseDetails (表H.4) ---------------------------------------------------


def test_cap_status_lists_the_card_quota_each_service_holds_per_node(api) -> None:
    node = make_node("edge-1")
    other = make_node("edge-2", ip="127.0.0.3")
    actions.record_reading(node, reading(cards=[gpu_card(0, 1.0, 0.1, [])]))
    card = node.cards.get()
    detector = make_service("svc-detector")
    counter = make_service("svc-counter")
    make_replica(detector, node, card, index=0, quota=0.5)
    make_replica(detector, node, card, index=1, quota=0.25, state=ReplicaState.STARTING)
    make_replica(detector, node, card, index=2, quota=0.25, state=ReplicaState.STOPPED)
    make_replica(detector, other, None, index=3, quota=0.0)
    make_replica(counter, node, card, index=0, quota=0.2, state=ReplicaState.FAILED)

    ops = {o["HostName"]: o for o in api.get("/CAP/Status").body["Data"]["OpsInfo"]}
    assert ops["edge-1"]["XpuUseDetails"] == [
        {"AlgoServiceID": "svc-counter", "XpuQuota": 0.2},  # failed still holds it
        {"AlgoServiceID": "svc-detector", "XpuQuota": 0.75},  # the stopped one does not
    ]
    assert ops["edge-2"]["XpuUseDetails"] == [{"AlgoServiceID": "svc-detector", "XpuQuota": 0.0}]
    local = next(o for name, o in ops.items() if name not in ("edge-1", "edge-2"))
    assert local["XpuUseDetails"] == []


# --- AlgoServiceMonitors (表A.3) ---------------------------------------------


def test_cad_status_maps_gpu_processes_of_a_local_replica_to_its_service(api, fake_gpus) -> None:
    """The real path: the NVML probe (fake pynvml) sees the engine and a
    worker it forked; the owner probe records who they are; the monitor maps
    both to the replica whose handle is the engine's "pid:starttime"."""
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        engine = psutil.Process()
        stranger = 2**22 + 4321  # not running: owned by nobody
        fake_gpus(
            FakeCard(
                memory_total=16 * GIB,
                memory_used=6 * GIB,
                utilization_percent=60,
                compute_processes=[(engine.pid, 2 * GIB), (worker.pid, GIB), (stranger, 3 * GIB)],
            ),
            FakeCard(uuid="GPU-2", memory_total=16 * GIB, memory_used=0, utilization_percent=0),
        )
        jobs.sample_local_node(force=True)
        node = actions.ensure_local_node()
        first, second = node.cards.order_by("index")
        make_replica(
            make_service("svc-local", package_id="pkg-engine"),
            node,
            first,
            ref=f"{engine.pid}:{engine.create_time():.2f}",
        )
        make_replica(make_service("svc-idle"), node, second, ref="1:0")  # no GPU process
        make_replica(make_service("svc-cpu", xpu_type="CPU"), node, None, ref="1:0")

        data = api.get("/CAD/Status").body["Data"]
    finally:
        worker.kill()
        worker.wait()

    monitors = data["AlgoServiceMonitors"]
    assert [m["AlgoFilePackageID"] for m in monitors] == ["pkg-svc-idle", "pkg-engine"]
    idle, local = monitors
    assert local["XpuType"] == "NVIDIA_T4" and local["XpuMemory"] == 16
    assert local["XpuMemoryUsed"] == pytest.approx(3.0)  # engine 2 + its worker 1
    # the card is 60 % busy; the service holds 3 of the 6 GB its processes use
    assert local["XpuUtilization"] == pytest.approx(0.3)
    ((key, value),) = local["XpuMemoryUsedList"][-1].items()
    assert key.isdigit() and value == pytest.approx(3.0)
    assert next(iter(local["XpuUtilizationList"][-1].values())) == pytest.approx(0.3)
    # holds a card, runs nothing on it: listed with zeros
    assert idle["XpuMemoryUsed"] == 0 and idle["XpuUtilization"] == 0
    assert next(iter(idle["XpuMemoryUsedList"][-1].values())) == 0


def test_node_and_cluster_monitors_map_docker_containers_and_sum_over_nodes(api) -> None:
    first = make_node("edge-1", cluster="c9")
    second = make_node("edge-2", cluster="c9", ip="127.0.0.3")
    now = timezone.now()
    container_b = "b" * 64
    for minutes in (2, 1, 0):
        at = now - timedelta(minutes=minutes)
        actions.record_reading(
            first,
            reading(
                cards=[
                    gpu_card(
                        0,
                        5.0,
                        0.8,
                        [
                            {"Pid": 10, "MemoryUsedGB": 3.0, "Container": CONTAINER},
                            {"Pid": 11, "MemoryUsedGB": 1.0, "Container": container_b},
                        ],
                    )
                ]
            ),
            taken_at=at,
            period_s=10,
        )
        actions.record_reading(
            second,
            reading(
                cards=[gpu_card(0, 2.0, 0.4, [{"Pid": 10, "MemoryUsedGB": 2.0, "Parents": [7]}])]
            ),
            taken_at=at,
            period_s=10,
        )
    service = make_service("svc-docker", package_id="pkg-docker")
    make_replica(service, first, first.cards.get(), index=0, runtime="docker", ref=CONTAINER[:12])
    make_replica(service, second, second.cards.get(), index=1, ref="7:0")
    # the same pid 10 on edge-2 belongs to edge-2's replica only (pids are per node)
    make_replica(make_service("svc-b"), first, first.cards.get(), runtime="docker", ref=container_b)

    node = api.post(f"/CCP/Node/Monitors/{first.pk}", {}).body["Data"]
    by_package = {m["AlgoFilePackageID"]: m for m in node["AlgoServiceMonitors"]}
    assert set(by_package) == {"pkg-docker", "pkg-svc-b"}
    mine = by_package["pkg-docker"]
    assert mine["XpuMemoryUsed"] == pytest.approx(3.0)
    assert mine["XpuUtilization"] == pytest.approx(0.8 * 3 / 4)
    assert len(mine["XpuMemoryUsedList"]) == 3
    assert by_package["pkg-svc-b"]["XpuMemoryUsed"] == pytest.approx(1.0)

    cluster = api.get("/CCP/Cluster/Monitors/c9").body["Data"]
    monitors = {m["AlgoFilePackageID"]: m for m in cluster["AlgoServiceMonitors"]}
    docker = monitors["pkg-docker"]
    assert docker["XpuMemoryUsed"] == pytest.approx(5.0)  # 3 on edge-1 + 2 on edge-2
    assert docker["XpuMemory"] == 32  # two 16 GB cards
    # mean over its two cards: 0.6 on edge-1, the whole 0.4 on edge-2
    assert docker["XpuUtilization"] == pytest.approx(0.5)
    keys = [int(next(iter(point))) for point in docker["XpuMemoryUsedList"]]
    assert keys == sorted(keys) and len(keys) == 3
    assert all(next(iter(p.values())) == pytest.approx(5.0) for p in docker["XpuMemoryUsedList"])


def test_without_services_the_monitors_are_empty(api) -> None:
    node = make_node()
    actions.record_reading(node, reading(cards=[gpu_card(0, 1.0, 0.5, [{"Pid": 1}])]))
    data = api.post(f"/CCP/Node/Monitors/{node.pk}", {}).body["Data"]
    assert data["AlgoServiceMonitors"] == []
    assert len(data["XpuMonitors"]) == 1
