"""The kubernetes backend's Deployment and helpers, built without a cluster;
tests/ccp/test_kubernetes_live.py runs the backend against a real control
plane."""

from __future__ import annotations

import pytest

from ccp.backends.base import WorkloadSpec

kubernetes = pytest.importorskip("kubernetes")


def test_the_deployment_carries_every_workload_field(settings):
    from ccp.backends.kubernetes import (
        SPEC_ANNOTATION,
        WORKLOAD_LABEL,
        KubernetesBackend,
        spec_hash,
    )

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
        "annotations": {SPEC_ANNOTATION: spec_hash(spec)},
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
    fields = {
        e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in c["env"] if "valueFrom" in e
    }
    # each pod's engine listens on its own address, so PodIP:Port is the engine
    assert fields == {"ENGINE_HOST": "status.podIP", "ENGINE_ID": "metadata.name"}
    assert c["imagePullPolicy"] == "IfNotPresent"


def test_quantities_are_read_as_kubernetes_writes_them():
    from ccp.backends.kubernetes import quantity

    assert quantity("250m") == 0.25
    assert quantity("2") == 2.0
    assert quantity("1Gi") == 2**30
    assert quantity("12345Ki") == 12345 * 1024
    assert quantity("123456789n") == pytest.approx(0.123456789)
    assert quantity("") == 0.0 and quantity(None) == 0.0


def test_the_spec_hash_follows_every_field_and_the_port(settings):
    from dataclasses import replace

    from ccp.backends.kubernetes import spec_hash

    spec = WorkloadSpec("default", "w", {}, {}, 1, "c", "img:1", 1, "", 0, 1)
    assert spec_hash(spec) == spec_hash(replace(spec))
    assert spec_hash(spec) != spec_hash(replace(spec, args=["-v"]))
    assert spec_hash(spec) != spec_hash(replace(spec, replicas=2))
    before = spec_hash(spec)
    settings.CCP_ENGINE_PORT = 9000
    assert spec_hash(spec) != before
