"""The `kubernetes` backend (skeleton: NOT yet tested against a control plane).

A workload is a Deployment in its namespace, pods come from the API. Talks
to the cluster named by CCP_KUBE_CONFIG / CCP_KUBE_CONTEXT, else the
in-cluster service account, else ~/.kube/config. Through the official
`kubernetes` client only.

Mapping of 表G.1: Labels -> pod template labels (plus
`facility.ccp/workload=<name>`, also in the selector); LabelSelector ->
selector.matchLabels; Cpu and Memory (Gi) -> requests and limits; Xpu ->
the extended resource CCP_KUBE_XPU_RESOURCE (nvidia.com/gpu by default;
ceil(Xpu) cards — set it to a sharing plugin's resource for fractions);
XpuType -> nodeSelector {CCP_KUBE_XPU_NODE_LABEL: XpuType}; Command/Args ->
command/args; the engine port CCP_ENGINE_PORT -> containerPort and
ENGINE_PORT. Images are pulled by the kubelets: an engine pushed as an image
reference is recorded as is, a tar cannot be loaded (push it to a registry
the cluster pulls from).
"""

from __future__ import annotations

import math
import time
from typing import Any

from ccp import conf
from ccp.backends.base import BackendError, Pod, WorkloadSpec, WorkloadStatus

WORKLOAD_LABEL = "facility.ccp/workload"


def _client() -> Any:
    try:
        from kubernetes import client, config  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover
        raise BackendError("the kubernetes client is not installed (requirements.txt)") from None
    try:
        if conf.kube_config():
            config.load_kube_config(conf.kube_config(), context=conf.kube_context() or None)
        else:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config(context=conf.kube_context() or None)
    except Exception as error:
        raise BackendError(f"no Kubernetes cluster configured: {error}") from None
    return client


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self) -> None:
        self.k = _client()
        self.apps = self.k.AppsV1Api()
        self.core = self.k.CoreV1Api()

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except self.k.exceptions.ApiException as error:
            if error.status == 404:
                return None
            raise BackendError(f"Kubernetes API: {error.status} {error.reason}") from None
        except Exception as error:
            raise BackendError(f"Kubernetes API not reachable: {error}") from None

    def is_available(self) -> tuple[bool, str]:
        try:
            self._call(self.core.get_api_resources)
        except BackendError as error:
            return False, str(error)
        return True, ""

    def deployment(self, spec: WorkloadSpec) -> Any:
        k = self.k
        labels = {**spec.labels, WORKLOAD_LABEL: spec.name}
        selector = {**spec.label_selector, WORKLOAD_LABEL: spec.name}
        resources: dict[str, str] = {}
        if spec.cpu:
            resources["cpu"] = str(spec.cpu)
        if spec.memory_gi:
            resources["memory"] = f"{spec.memory_gi}Gi"
        limits = dict(resources)
        node_selector = None
        if spec.xpu > 0:
            limits[conf.kube_xpu_resource()] = str(max(1, math.ceil(spec.xpu)))
            if spec.xpu_type:
                node_selector = {conf.kube_xpu_node_label(): spec.xpu_type}
        port = conf.engine_port()
        env = {**spec.env, "ENGINE_PORT": str(port), "ENGINE_HOST": "0.0.0.0"}  # noqa: S104
        container = k.V1Container(
            name=spec.container_name,
            image=spec.image,
            command=spec.command or None,
            args=spec.args or None,
            env=[k.V1EnvVar(name=n, value=v) for n, v in sorted(env.items())]
            + [
                k.V1EnvVar(
                    name="ENGINE_ID",
                    value_from=k.V1EnvVarSource(
                        field_ref=k.V1ObjectFieldSelector(field_path="metadata.name")
                    ),
                )
            ],
            ports=[k.V1ContainerPort(container_port=port, name="engine")],
            resources=k.V1ResourceRequirements(requests=resources or None, limits=limits or None),
            readiness_probe=k.V1Probe(
                http_get=k.V1HTTPGetAction(path="/Health", port=port), period_seconds=5
            ),
        )
        return k.V1Deployment(
            metadata=k.V1ObjectMeta(name=spec.name, namespace=spec.namespace, labels=labels),
            spec=k.V1DeploymentSpec(
                replicas=spec.replicas,
                selector=k.V1LabelSelector(match_labels=selector),
                template=k.V1PodTemplateSpec(
                    metadata=k.V1ObjectMeta(labels=labels),
                    spec=k.V1PodSpec(containers=[container], node_selector=node_selector),
                ),
            ),
        )

    def apply(self, spec: WorkloadSpec) -> str:
        body = self.deployment(spec)
        existing = self._call(self.apps.read_namespaced_deployment, spec.name, spec.namespace)
        if existing is None:
            self._call(self.apps.create_namespaced_deployment, spec.namespace, body)
        else:
            self._call(self.apps.patch_namespaced_deployment, spec.name, spec.namespace, body)
        return ""

    def reconcile(self, specs: list[WorkloadSpec]) -> dict[tuple[str, str], str]:
        return {(s.namespace, s.name): self.apply(s) for s in specs}

    def delete(self, namespace: str, name: str) -> list[str]:
        names = [pod.name for pod in self.pods(namespace, name)]
        self._call(
            self.apps.delete_namespaced_deployment,
            name,
            namespace,
            propagation_policy="Foreground",
        )
        return names

    def pods(self, namespace: str, name: str) -> list[Pod]:
        found = self._call(
            self.core.list_namespaced_pod, namespace, label_selector=f"{WORKLOAD_LABEL}={name}"
        )
        now = time.time()
        result = []
        for item in getattr(found, "items", None) or []:
            status = item.status
            statuses = status.container_statuses or []
            ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
            created = item.metadata.creation_timestamp.timestamp()
            reasons = [
                (c.state.waiting.reason if c.state and c.state.waiting else "") for c in statuses
            ]
            labels = {k: v for k, v in (item.metadata.labels or {}).items() if k != WORKLOAD_LABEL}
            result.append(
                Pod(
                    name=item.metadata.name,
                    node_name=item.spec.node_name or "",
                    host_ip=status.host_ip or "",
                    pod_ip=status.pod_ip or "",
                    port=conf.engine_port(),
                    phase=status.phase or "Unknown",
                    status_desc=(status.reason or "; ".join(filter(None, reasons)) or "")[:256],
                    image=item.spec.containers[0].image,
                    restarts=sum(c.restart_count for c in statuses),
                    age_s=max(0, int(now - created)),
                    ready=ready,
                    deployment=name,
                    labels=labels,
                    created_at=created,
                )
            )
        return sorted(result, key=lambda p: (p.created_at, p.name))

    def status(self, spec: WorkloadSpec) -> WorkloadStatus:
        found = self._call(self.apps.read_namespaced_deployment, spec.name, spec.namespace)
        if found is None:
            return WorkloadStatus(0, 0, "the Deployment is missing")
        return WorkloadStatus(
            ready=found.status.ready_replicas or 0, total=found.status.replicas or 0
        )

    def load_image(self, path: str) -> str:
        raise BackendError(
            "a Kubernetes cluster pulls its images: push the engine to a registry the "
            "cluster can reach and send its reference"
        )

    def pull_image(self, ref: str, auth: dict[str, str] | None) -> str:
        return ref  # the kubelets pull it when a pod needs it

    def remove_image(self, ref: str) -> bool:
        return False
