"""The kubernetes backend's Deployment, built without a cluster (the backend
against a real control plane is not tested yet: see docs/ccp.md)."""

from __future__ import annotations

import pytest

from ccp.backends.base import WorkloadSpec

kubernetes = pytest.importorskip("kubernetes")


def test_the_deployment_carries_every_workload_field(settings):
    from ccp.backends.kubernetes import WORKLOAD_LABEL, KubernetesBackend

    settings.CCP_KUBE_XPU_RESOURCE = "example.com/vgpu"
    backend = KubernetesBackend.__new__(KubernetesBackend)
    backend.k = kubernetes.client
    spec = WorkloadSpec(
        namespace="default",
        name="people",
        labels={"app": "people"},
        label_selector={"app": "people"},
        replicas=3,
        container_name="engine",
        image="127.0.0.1:5000/people:1",
        cpu=2,
        xpu_type="NVIDIA_T4",
        xpu=0.5,
        memory_gi=5,
        command=["python3"],
        args=["-m", "engine"],
        env={"AUTH_ADDRESS": "127.0.0.1:8808"},
    )
    d = kubernetes.client.ApiClient().sanitize_for_serialization(backend.deployment(spec))
    assert d["metadata"] == {
        "name": "people",
        "namespace": "default",
        "labels": {"app": "people", WORKLOAD_LABEL: "people"},
    }
    assert d["spec"]["replicas"] == 3
    assert d["spec"]["selector"]["matchLabels"] == {"app": "people", WORKLOAD_LABEL: "people"}
    pod = d["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"facility/xpu-type": "NVIDIA_T4"}
    [c] = pod["containers"]
    assert (c["name"], c["image"], c["command"], c["args"]) == (
        "engine",
        "127.0.0.1:5000/people:1",
        ["python3"],
        ["-m", "engine"],
    )
    assert c["resources"]["requests"] == {"cpu": "2", "memory": "5Gi"}
    assert c["resources"]["limits"] == {"cpu": "2", "memory": "5Gi", "example.com/vgpu": "1"}
    assert c["ports"] == [{"containerPort": 8750, "name": "engine"}]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["AUTH_ADDRESS"] == "127.0.0.1:8808" and env["ENGINE_PORT"] == "8750"
    assert c["readinessProbe"]["httpGet"] == {"path": "/Health", "port": 8750}
