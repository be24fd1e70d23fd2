"""The kubernetes backend against a real control plane (tests/support/kube.py):
etcd, kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 on
127.0.0.1, with the test's simulated kubelet running the scheduled pods as
Docker containers (host networking, one loopback PodIP per pod). The
facility is driven through its REST API with CCP_BACKEND=kubernetes.

Without the binaries (scripts/ensure-kube.sh) or Docker: skipped, with
CI=true: failed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from ccp import jobs
from ccp.backends import get_backend
from ccp.backends.kubernetes import WORKLOAD_LABEL
from ccp.models import Workload
from tests.support.engines import analyse_to_the_end
from tests.support.examples import example
from tests.support.kube import Cluster, SimNode, free_port, running_cluster

from .conftest import P, W, all_ready, create_workload, health, pods, scale, wait_for

pytestmark = pytest.mark.docker

GPU = "nvidia.com/gpu"
T4_NODE = "node-t4"
NODES = [
    SimNode("node-a", cpu="4", memory="8Gi"),
    SimNode(
        T4_NODE,
        cpu="8",
        memory="16Gi",
        extended={GPU: "2"},
        labels={"facility/xpu-type": "NVIDIA_T4"},
    ),
]
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("kube"), NODES) as cluster:
        yield cluster


def _kube_api(kube: Cluster) -> tuple[Any, Any]:
    from kubernetes import client

    api = kube.control_plane.api_client()
    return client.AppsV1Api(api), client.CoreV1Api(api)


def _kubelet_containers(kube: Cluster) -> list[Any]:
    return kube.kubelet._containers()


@pytest.fixture
def k8s(kube: Cluster, engine_image: str, settings: Any) -> Iterator[Cluster]:
    """CCP_BACKEND=kubernetes on the test cluster; every Deployment of the
    facility deleted (and its containers gone) after the test."""
    settings.CCP_BACKEND = "kubernetes"
    settings.CCP_KUBE_CONFIG = str(kube.control_plane.kubeconfig)
    settings.CCP_ENGINE_PORT = free_port()
    settings.CCP_HEALTH_TIMEOUT_S = 0.5
    kube.kubelet.errors.clear()
    yield kube
    apps, _ = _kube_api(kube)
    for d in apps.list_deployment_for_all_namespaces(label_selector=WORKLOAD_LABEL).items:
        apps.delete_namespaced_deployment(
            d.metadata.name, d.metadata.namespace, propagation_policy="Background"
        )
    assert wait_for(lambda: not _kubelet_containers(kube), TIMEOUT), _kubelet_containers(kube)
    assert not kube.kubelet.errors, (kube.kubelet.errors, kube.kubelet.transient)


def create(api: Any, image: str, name: str = "people", replicas: int = 1, **kw: Any) -> None:
    create_workload(api, image, name, replicas, **kw)
    assert Workload.objects.get(name=name).reason == ""


def detail(api: Any, name: str = "people") -> dict[str, Any]:
    return api.post(f"{W}/{name}", {"ClusterCode": "c1", "Namespace": "default"}).body["Data"]


def test_create_scale_one_three_zero_with_real_pods(api, k8s, engine_image, settings):
    create(api, engine_image, replicas=1)
    apps, core = _kube_api(k8s)
    deployment = apps.read_namespaced_deployment("people", "default")
    [c] = deployment.spec.template.spec.containers
    assert c.resources.requests == {"cpu": "1", "memory": "1Gi"} == c.resources.limits
    assert deployment.spec.replicas == 1

    [pod] = all_ready(api, 1, timeout=TIMEOUT)
    assert pod["Name"].startswith("people-")
    assert pod["Status"] == "Running" and pod["Restarts"] == 0 and pod["Age"] >= 0
    assert pod["NodeName"] in {n.name for n in NODES}
    assert pod["HostIP"] == "127.0.0.1" and pod["PodIP"].startswith("127.")
    assert pod["Port"] == settings.CCP_ENGINE_PORT
    assert pod["Image"] == engine_image and pod["DeploymentName"] == "people"
    assert pod["Labels"] == [
        {"Name": "app", "Value": "people"},
        {"Name": "tier", "Value": "analysis"},
    ]
    assert "running" in pod["StatusDesc"]
    # the engine interface at PodIP:Port, and the pod knows who it is
    answer = health(pod["PodIP"], pod["Port"])
    assert answer["Data"]["Status"] == "READY" and answer["Data"]["EngineID"] == pod["Name"]
    # the pod the API reports is the one the facility reports
    api_pod = core.read_namespaced_pod(pod["Name"], "default")
    assert (api_pod.status.pod_ip, api_pod.spec.node_name) == (pod["PodIP"], pod["NodeName"])

    scale(api, 3)
    assert apps.read_namespaced_deployment("people", "default").spec.replicas == 3
    three = all_ready(api, 3, timeout=TIMEOUT)
    assert len({p["PodIP"] for p in three}) == 3 and {p["Port"] for p in three} == {pod["Port"]}
    assert pod["Name"] in {p["Name"] for p in three}
    assert all(health(p["PodIP"], p["Port"])["Data"]["EngineID"] == p["Name"] for p in three)
    assert detail(api)["Status"] == "Running 3/3 ready"
    one = api.post(
        f"{P}/{three[2]['Name']}",
        {"ClusterCode": "c1", "Namespace": "default", "WorkloadName": "people"},
    ).body
    assert one["Code"] == "0" and one["Data"] == three[2] | {"Age": one["Data"]["Age"]}

    scale(api, 0)
    assert wait_for(lambda: pods(api) == [], TIMEOUT), pods(api)
    assert wait_for(lambda: not _kubelet_containers(k8s), TIMEOUT)
    assert all(health(p["PodIP"], p["Port"]) is None for p in three)
    assert detail(api)["Status"] == "Scaled to 0"


def test_a_killed_container_is_restarted_and_counted(api, k8s, engine_image):
    create(api, engine_image, replicas=2)
    before = {p["Name"]: p for p in all_ready(api, 2, timeout=TIMEOUT)}
    victim = sorted(before)[0]
    [container] = [
        c for c in _kubelet_containers(k8s) if c.labels["io.kubernetes.pod.name"] == victim
    ]
    container.kill()

    def restarted() -> dict[str, Any] | None:
        found = {p["Name"]: p for p in pods(api)}
        p = found.get(victim)
        return p if p and p["Restarts"] == 1 and p["Ready"] else None

    after = wait_for(restarted, TIMEOUT)
    assert after, pods(api)
    assert after["PodIP"] == before[victim]["PodIP"] and after["Status"] == "Running"
    assert "last ended" in after["StatusDesc"] and "137" in after["StatusDesc"]
    assert {p["Name"] for p in pods(api)} == set(before)  # restarted in place
    assert [p["Restarts"] for p in pods(api) if p["Name"] != victim] == [0]
    assert health(after["PodIP"], after["Port"])["Data"]["EngineID"] == victim


def test_xpu_type_selects_the_labelled_node_and_the_gpu_resource_is_requested(
    api, k8s, engine_image
):
    create(api, engine_image, name="t4", XpuType="NVIDIA_T4", Xpu=1, Cpu=1, Memory=1)
    [pod] = all_ready(api, 1, "t4", timeout=TIMEOUT)
    assert pod["NodeName"] == T4_NODE
    apps, _ = _kube_api(k8s)
    template = apps.read_namespaced_deployment("t4", "default").spec.template.spec
    assert template.node_selector == {"facility/xpu-type": "NVIDIA_T4"}
    assert template.containers[0].resources.limits[GPU] == "1"
    # node-t4 has 2 cards: a third pod asking for one cannot be placed
    scale(api, 3, "t4")
    wait_for(lambda: len(pods(api, "t4")) == 3, TIMEOUT)

    def unschedulable() -> list[dict[str, Any]]:
        return [p for p in pods(api, "t4") if p["StatusDesc"].startswith("Unschedulable")]

    [stuck] = wait_for(unschedulable, TIMEOUT) or [None]
    assert stuck and stuck["Status"] == "Pending" and stuck["NodeName"] == "", pods(api, "t4")
    assert f"Insufficient {GPU}" in stuck["StatusDesc"]
    assert wait_for(lambda: len([p for p in pods(api, "t4") if p["Ready"]]) == 2, TIMEOUT)
    status = detail(api, "t4")["Status"]
    assert status.startswith("Pending: Unschedulable") and GPU in status


def test_the_standards_examples_through_the_api(api, k8s):
    """G.1 d as written: image `xxxx` (not in the engine: never pulled here),
    NVIDIA_T4 ×1 for each of 3 replicas, Cpu 3, Memory 5."""
    created = api.post(W, example("G.1-d"))
    assert created.status_code == 200, created.body
    assert created.body["Data"] == {"WorkloadName": "xxxx", "Namespace": "default"}
    found = wait_for(lambda: len(pods(api, "xxxx")) == 3 and pods(api, "xxxx"), TIMEOUT)
    assert found, pods(api, "xxxx")

    def settled() -> list[dict[str, Any]] | None:
        current = pods(api, "xxxx")
        descs = sorted(p["StatusDesc"] for p in current)
        pulled = [d for d in descs if "ErrImagePull" in d]
        stuck = [d for d in descs if d.startswith("Unschedulable")]
        return current if (len(pulled), len(stuck)) == (2, 1) else None

    current = wait_for(settled, TIMEOUT)
    assert current, pods(api, "xxxx")
    assert {p["Status"] for p in current} == {"Pending"}
    assert sorted(p["NodeName"] for p in current) == ["", T4_NODE, T4_NODE]
    assert not any(p["Ready"] for p in current)
    assert api.call("put", f"{W}/xxxx", example("G.6-d")).status_code == 200
    listed = api.post(W, {**example("G.8-d"), "WorkloadName": "xxxx"}).body
    assert listed["Data"]["TotalSize"] == 1
    assert api.post(W, example("G.8-d")).body["Data"]["TotalSize"] == 0  # "xxxxx"
    info = api.post(f"{W}/xxxx", example("G.14-d")).body["Data"]
    assert (info["Replicas"], info["Cpu"], info["Memory"], info["Xpu"]) == (3, 3, 5, 1)
    assert info["Status"].startswith("Pending: ")
    listed_pods = api.post(P, example("G.16-d"))
    assert listed_pods.status_code == 200 and len(listed_pods.body["Data"]["Pods"]) == 3
    names = sorted(p["Name"] for p in current)
    one = api.post(f"{P}/{names[0]}", example("G.21-d"))
    assert one.status_code == 200 and one.body["Data"]["Name"] == names[0]
    gone = api.call("delete", f"{W}/xxxx", example("G.4-d"))
    assert gone.status_code == 200, gone.body
    assert (
        gone.body["Message"] == f"deleted workload default/xxxx; pods removed: {', '.join(names)}"
    )
    apps, core = _kube_api(k8s)
    assert wait_for(
        lambda: not core.list_namespaced_pod("default", label_selector="app=test").items, TIMEOUT
    )
    assert not apps.list_namespaced_deployment("default", label_selector=WORKLOAD_LABEL).items


def test_list_sort_page_namespaces_and_the_reconcile_loop(api, k8s, engine_image, settings):
    for name in ("beta", "alpha", "gamma"):
        create(api, engine_image, name=name, replicas=0)
    create(api, engine_image, name="other", replicas=1, Namespace="team-b")  # made on demand
    page = api.post(
        W,
        {
            "ClusterCode": "c1",
            "Namespace": "default",
            "PAgeRequest": {
                "PageNumber": 1,
                "PageSize": 2,
                "OrderList": [{"Property": "WorkloadName", "Direction": "desc"}],
            },
        },
    ).body["Data"]
    assert page["TotalSize"] == 3
    assert [w["WorkloadName"] for w in page["PageContent"]] == ["gamma", "beta"]
    assert [w["Replicas"] for w in page["PageContent"]] == [0, 0]
    assert detail(api, "gamma")["Status"] == "Scaled to 0"
    second = api.post(
        W,
        {
            "ClusterCode": "c1",
            "Namespace": "default",
            "PAgeRequest": {
                "PageNumber": 2,
                "PageSize": 2,
                "OrderList": [{"Property": "WorkloadName", "Direction": "desc"}],
            },
        },
    ).body["Data"]
    assert [w["WorkloadName"] for w in second["PageContent"]] == ["alpha"]
    [pod] = wait_for(
        lambda: [p for p in pods(api, "other", "team-b") if p["Ready"]] or None, TIMEOUT
    )
    assert pod["DeploymentName"] == "other"

    # the loop: a Deployment changed behind the facility's back is put back,
    # one whose workload is gone is removed
    apps, _ = _kube_api(k8s)
    apps.patch_namespaced_deployment_scale("alpha", "default", {"spec": {"replicas": 2}})
    Workload.objects.filter(name="gamma").delete()
    apps.patch_namespaced_deployment(
        "beta", "default", {"metadata": {"annotations": {"facility.ccp/spec": "changed"}}}
    )
    counts = jobs.reconcile_workloads()
    assert counts == {"workloads": 3, "unmet": 0}
    names = {
        (d.metadata.namespace, d.metadata.name): d.spec.replicas
        for d in apps.list_deployment_for_all_namespaces(label_selector=WORKLOAD_LABEL).items
    }
    assert names == {("default", "beta"): 0, ("default", "alpha"): 0, ("team-b", "other"): 1}
    beta = apps.read_namespaced_deployment("beta", "default").metadata.annotations
    assert beta["facility.ccp/spec"] != "changed"
    assert get_backend("kubernetes").is_available() == (True, "")


def test_monitors_fall_back_without_a_metrics_api_and_use_it_when_served(api, k8s, engine_image):
    """No metrics-server: node_usage() is None, nothing is recorded and the
    monitors answer from the facility's own samples. With the simulated
    metrics-server (metrics.k8s.io NodeMetrics), each pass of the ccp loop
    records the cluster's nodes and the monitors report them."""
    from ccp.backends.kubernetes import KubernetesBackend
    from compute.actions import ensure_local_node
    from compute.models import Node

    local = ensure_local_node()
    assert KubernetesBackend().node_usage() is None
    jobs.reconcile_workloads()
    assert list(Node.objects.values_list("name", flat=True)) == [local.name]
    before = api.get(f"/CCP/Cluster/Monitors/{local.cluster.code}")
    assert before.status_code == 200 and before.body["Data"]["Cpu"] == local.cpu_cores

    create(api, engine_image, name="busy", XpuType="NVIDIA_T4", Xpu=1)  # lands on node-t4
    all_ready(api, 1, "busy", timeout=TIMEOUT)
    k8s.kubelet.serve_metrics()
    try:

        def measured() -> Any:
            usage = {n.name: n for n in KubernetesBackend().node_usage() or []}
            t4 = usage.get(T4_NODE)
            return usage if t4 and t4.memory_used_bytes > 0 else None

        usage = wait_for(measured, TIMEOUT)
        assert usage, k8s.kubelet.node_metrics()
        assert set(usage) == {"node-a", T4_NODE}
        assert (usage[T4_NODE].cpu_cores, usage[T4_NODE].memory_bytes) == (8, 16 * 2**30)
        assert (usage["node-a"].cpu_cores, usage["node-a"].ip) == (4, "127.0.0.1")
        assert usage["node-a"].memory_used_bytes == 0  # no pod there

        jobs.reconcile_workloads()  # what the ccp loop does
        t4 = Node.objects.get(name=T4_NODE)
        assert (t4.cpu_cores, t4.memory_gb, t4.cluster.code) == (8, 16, local.cluster.code)
        answer = api.post(
            f"/CCP/Node/Monitors/{t4.pk}", {"ClusterCode": local.cluster.code, "NodeID": str(t4.pk)}
        )
        assert answer.status_code == 200, answer.body
        data = answer.body["Data"]
        assert (data["ID"], data["Cpu"], data["Memory"], data["IsOnline"]) == (t4.pk, 8, 16, True)
        assert data["MemoryUsed"] > 0
        cluster = api.get(f"/CCP/Cluster/Monitors/{local.cluster.code}").body["Data"]
        assert cluster["Cpu"] == local.cpu_cores + 4 + 8
    finally:
        k8s.kubelet.stop_metrics()


# -- task control through pods (§6.1.4) -------------------------------------------


@pytest.fixture(scope="module")
def reference_image() -> str:
    """The reference engine (algorithms/reference/engine) as an image, built
    FROM facility/engine-python:bookworm as build_reference_package does."""
    from algorithms.management.commands.build_reference_package import (
        build_image,
        engine_digest,
    )
    from tests.support.docker import built_image

    base = built_image("engine", timeout=1200)
    tag = f"facility-test/reference-engine:{engine_digest()[:12]}"
    build_image(base, tag, engine_digest())
    return tag


def test_a_task_on_a_pod_analyses_video(api, k8s, reference_image, file_server):
    from tests.reference.conftest import media_folder, task_body

    media = media_folder()
    # a workload has no Env: Command sets the engine's file pacing (as fast as it goes)
    create(
        api,
        reference_image,
        name="people",
        replicas=1,
        Cpu=2,
        Memory=2,
        Command="env ENGINE_FILE_SPEED=0 python3 -m engine",
    )
    [pod] = all_ready(api, 1, timeout=TIMEOUT)
    engine = f"http://{pod['PodIP']}:{pod['Port']}"
    health = requests.get(f"{engine}/Health", timeout=5).json()["Data"]
    assert health["Status"] == "READY" and health["EngineID"] == pod["Name"]

    (Path(file_server.root) / "vtest_8s.mp4").symlink_to(media / "vtest_8s.mp4")
    task = task_body("on-pod", file_server.url("vtest_8s.mp4"))
    state = analyse_to_the_end(engine, "on-pod", task)
    assert state["Stats"]["FramesDecoded"] == 80  # 8 s at 10 fps
    assert state["Stats"]["FramesAnalysed"] == 40  # 5 fps
    assert state["Stats"]["Events"] >= 1
    events = requests.get(f"{engine}/Events", timeout=5).json()["Data"]["Events"]
    assert events and events[0]["SnapshotBytes"] > 10_000
