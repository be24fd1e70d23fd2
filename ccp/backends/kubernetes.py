"""The `kubernetes` backend: a workload is a Deployment, pods come from the API.

Talks to the cluster named by CCP_KUBE_CONFIG / CCP_KUBE_CONTEXT, else the
in-cluster service account, else ~/.kube/config, through the official
`kubernetes` client (the only module of the facility that imports it).

Mapping of 表G.1: Namespace -> the namespace (created when missing); Name ->
the Deployment; Labels -> pod template labels (plus `facility.ccp/workload=
<name>`, also in the selector); LabelSelector -> selector.matchLabels; Cpu
and Memory (Gi) -> requests and limits; Xpu -> the extended resource
CCP_KUBE_XPU_RESOURCE (nvidia.com/gpu by default; ceil(Xpu) cards — name a
sharing plugin's resource for fractions); XpuType -> nodeSelector
{CCP_KUBE_XPU_NODE_LABEL: XpuType}; Command/Args -> command/args. Each pod
runs its engine on CCP_ENGINE_PORT (containerPort `engine`, ENGINE_PORT),
bound to its own pod IP (ENGINE_HOST from status.podIP), so PodIP:Port is
the engine interface and a `GET /Health` readiness probe decides Ready.

Images are pulled by the kubelets: an engine pushed as an image reference is
recorded as is, a tar cannot be loaded (push it to a registry the cluster
pulls from).

The Deployment carries the hash of what the facility asked for
(annotation `facility.ccp/spec`), so the reconcile loop writes to the API
only when a workload changed or its replicas were changed behind the
facility's back (then the facility's Replicas win); Deployments with the workload label that no
workload claims are deleted (one facility per cluster, as with docker).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from ccp import conf
from ccp.backends.base import BackendError, Pod, WorkloadSpec, WorkloadStatus

WORKLOAD_LABEL = "facility.ccp/workload"
SPEC_ANNOTATION = "facility.ccp/spec"
ENGINE_PORT_NAME = "engine"
CONFLICT_RETRIES = 5

_clients: dict[tuple[str, str, float], Any] = {}


class ApiConflict(BackendError):
    """409: the object exists, or changed since it was read."""


_clients_lock = threading.Lock()


def _modules() -> tuple[Any, Any]:
    try:
        from kubernetes import client, config  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover
        raise BackendError("the kubernetes client is not installed (requirements.txt)") from None
    return client, config


def _api_client() -> Any:
    """One ApiClient (and its connection pool) per kubeconfig, context and
    kubeconfig mtime; its own Configuration, never the client's global one."""
    client, config = _modules()
    path, context = conf.kube_config(), conf.kube_context()
    try:
        mtime = os.stat(path).st_mtime if path else 0.0
    except OSError as error:
        raise BackendError(f"CCP_KUBE_CONFIG {path}: {error.strerror}") from None
    key = (path, context, mtime)
    with _clients_lock:
        if key in _clients:
            return _clients[key]
        configuration = client.Configuration()
        try:
            if path:
                config.load_kube_config(
                    path, context=context or None, client_configuration=configuration
                )
            else:
                try:
                    config.load_incluster_config(client_configuration=configuration)
                except config.ConfigException:
                    config.load_kube_config(
                        context=context or None, client_configuration=configuration
                    )
        except Exception as error:
            raise BackendError(f"no Kubernetes cluster configured: {error}") from None
        _clients.clear()  # an older kubeconfig's client is not used again
        _clients[key] = client.ApiClient(configuration)
        return _clients[key]


def spec_hash(spec: WorkloadSpec) -> str:
    """What the facility asked for (and the settings that shape the
    Deployment), so an unchanged workload is not rewritten every pass."""
    settings = (conf.engine_port(), conf.kube_xpu_resource(), conf.kube_xpu_node_label())
    text = json.dumps([spec.__dict__, settings], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class NodeUsage:
    """One node as the metrics API (metrics.k8s.io) and the node object see it."""

    name: str
    ip: str  # the InternalIP
    cpu_cores: float  # capacity
    memory_bytes: int
    cpu_used_cores: float
    memory_used_bytes: int


def quantity(text: str | None) -> float:
    """A Kubernetes quantity ('250m', '1Gi', '12345Ki', '2') as a number."""
    if not text:
        return 0.0
    suffixes = {
        "n": 1e-9,
        "u": 1e-6,
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }
    for suffix in sorted(suffixes, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * suffixes[suffix]
    return float(text)


class KubernetesBackend:
    name = "kubernetes"

    def __init__(self) -> None:
        self.k, _ = _modules()
        api = _api_client()
        self.apps = self.k.AppsV1Api(api)
        self.core = self.k.CoreV1Api(api)
        self.custom = self.k.CustomObjectsApi(api)
        self.version = self.k.VersionApi(api)

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """The API call; None for 404, BackendError with the API's own
        message for anything else."""
        try:
            return fn(*args, **kwargs)
        except self.k.exceptions.ApiException as error:
            if error.status == 404:
                return None
            try:
                message = json.loads(error.body or "{}").get("message") or error.reason
            except ValueError:
                message = error.reason
            kind = ApiConflict if error.status == 409 else BackendError
            raise kind(f"Kubernetes API: {error.status} {message}") from None
        except Exception as error:
            raise BackendError(f"Kubernetes API not reachable: {error}") from None

    def is_available(self) -> tuple[bool, str]:
        try:
            self._call(self.version.get_code, _request_timeout=5)
        except BackendError as error:
            return False, str(error)
        return True, ""

    # -- the Deployment ----------------------------------------------------------

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
        env = {**spec.env, "ENGINE_PORT": str(port)}

        def field(name: str, path: str) -> Any:
            return k.V1EnvVar(
                name=name,
                value_from=k.V1EnvVarSource(field_ref=k.V1ObjectFieldSelector(field_path=path)),
            )

        container = k.V1Container(
            name=spec.container_name,
            image=spec.image,
            image_pull_policy="IfNotPresent",
            command=spec.command or None,
            args=spec.args or None,
            env=[k.V1EnvVar(name=n, value=v) for n, v in sorted(env.items())]
            + [
                # the engine listens on its pod's own address: PodIP:Port
                field("ENGINE_HOST", "status.podIP"),
                field("ENGINE_ID", "metadata.name"),
            ],
            ports=[k.V1ContainerPort(container_port=port, name=ENGINE_PORT_NAME)],
            resources=k.V1ResourceRequirements(requests=resources or None, limits=limits or None),
            readiness_probe=k.V1Probe(
                http_get=k.V1HTTPGetAction(path="/Health", port=port), period_seconds=5
            ),
        )
        return k.V1Deployment(
            metadata=k.V1ObjectMeta(
                name=spec.name,
                namespace=spec.namespace,
                labels=labels,
                annotations={SPEC_ANNOTATION: spec_hash(spec)},
            ),
            spec=k.V1DeploymentSpec(
                replicas=spec.replicas,
                selector=k.V1LabelSelector(match_labels=selector),
                template=k.V1PodTemplateSpec(
                    metadata=k.V1ObjectMeta(labels=labels),
                    spec=k.V1PodSpec(containers=[container], node_selector=node_selector),
                ),
            ),
        )

    def _ensure_namespace(self, namespace: str) -> None:
        if self._call(self.core.read_namespace, namespace) is not None:
            return
        body = self.k.V1Namespace(metadata=self.k.V1ObjectMeta(name=namespace))
        with contextlib.suppress(ApiConflict):  # created meanwhile
            self._call(self.core.create_namespace, body)

    def apply(self, spec: WorkloadSpec) -> str:
        body = self.deployment(spec)
        for attempt in range(CONFLICT_RETRIES):
            existing = self._call(self.apps.read_namespaced_deployment, spec.name, spec.namespace)
            if existing is None:
                self._ensure_namespace(spec.namespace)
                self._call(self.apps.create_namespaced_deployment, spec.namespace, body)
                return ""
            annotations = existing.metadata.annotations or {}
            wanted = body.metadata.annotations[SPEC_ANNOTATION]
            if (
                annotations.get(SPEC_ANNOTATION) == wanted
                and existing.spec.replicas == spec.replicas
            ):
                break
            # replace, not patch: a Command removed from the workload must go
            body.metadata.resource_version = existing.metadata.resource_version
            try:
                self._call(self.apps.replace_namespaced_deployment, spec.name, spec.namespace, body)
                break
            except ApiConflict:
                # the controllers changed it since we read it: read it again
                if attempt == CONFLICT_RETRIES - 1:
                    raise
        return self.status(spec).reason

    def reconcile(self, specs: list[WorkloadSpec]) -> dict[tuple[str, str], str]:
        reasons = {}
        for s in specs:
            try:
                reasons[(s.namespace, s.name)] = self.apply(s)
            except BackendError as error:  # this workload's problem, not the others'
                reasons[(s.namespace, s.name)] = str(error)
        found = self._call(
            self.apps.list_deployment_for_all_namespaces, label_selector=WORKLOAD_LABEL
        )
        for item in getattr(found, "items", None) or []:
            key = (item.metadata.namespace, item.metadata.name)
            if key not in reasons:  # workloads deleted while we were away
                self._delete(*key)
        return reasons

    def _delete(self, namespace: str, name: str) -> None:
        # Background: the Deployment goes at once (a new one of the same name
        # can be created), the garbage collector removes its ReplicaSets and pods
        self._call(
            self.apps.delete_namespaced_deployment,
            name,
            namespace,
            propagation_policy="Background",
        )

    def delete(self, namespace: str, name: str) -> list[str]:
        names = sorted(pod.name for pod in self.pods(namespace, name))
        self._delete(namespace, name)
        return names

    # -- observing -----------------------------------------------------------------

    def _pod(self, item: Any, deployment: str, now: float) -> Pod:
        status = item.status
        statuses = status.container_statuses or []
        conditions = {c.type: c for c in status.conditions or []}
        ready_condition = conditions.get("Ready")
        ready = bool(ready_condition and ready_condition.status == "True")
        created = item.metadata.creation_timestamp.timestamp()
        port = conf.engine_port()
        for container in item.spec.containers:
            for p in container.ports or []:
                if p.name == ENGINE_PORT_NAME:
                    port = p.container_port
        labels = {k: v for k, v in (item.metadata.labels or {}).items() if k != WORKLOAD_LABEL}
        labels.pop("pod-template-hash", None)
        return Pod(
            name=item.metadata.name,
            node_name=item.spec.node_name or "",
            host_ip=status.host_ip or "",
            pod_ip=status.pod_ip or "",
            port=port,
            phase=status.phase or "Unknown",
            status_desc=self._describe(item, conditions, statuses)[:256],
            image=item.spec.containers[0].image,
            restarts=sum(c.restart_count or 0 for c in statuses),
            age_s=max(0, int(now - created)),
            ready=ready,
            deployment=deployment,
            labels=labels,
            created_at=created,
        )

    @staticmethod
    def _describe(item: Any, conditions: dict[str, Any], statuses: list[Any]) -> str:
        """What a person needs to know, as `kubectl describe` would say it."""
        if item.metadata.deletion_timestamp:
            return "Terminating"
        scheduled = conditions.get("PodScheduled")
        if scheduled and scheduled.status == "False":
            return f"{scheduled.reason or 'Unschedulable'}: {scheduled.message or ''}".strip()
        if item.status.reason or item.status.message:
            return f"{item.status.reason or ''}: {item.status.message or ''}".strip(": ")
        parts = []
        for c in statuses:
            state = c.state
            if state and state.waiting:
                parts.append(f"{c.name}: {state.waiting.reason or 'Waiting'}")
                if state.waiting.message:
                    parts[-1] += f" ({state.waiting.message})"
            elif state and state.terminated:
                t = state.terminated
                parts.append(f"{c.name}: {t.reason or 'Terminated'} (exit {t.exit_code})")
            elif state and state.running:
                parts.append(f"{c.name}: running" + ("" if c.ready else ", not ready"))
            if c.restart_count and c.last_state and c.last_state.terminated:
                last = c.last_state.terminated
                parts[-1] += f"; last ended {last.reason or ''} (exit {last.exit_code})"
        if not parts:
            ready = conditions.get("Ready")
            return (ready.reason or "") if ready else (item.status.phase or "")
        return "; ".join(parts)

    def pods(self, namespace: str, name: str) -> list[Pod]:
        found = self._call(
            self.core.list_namespaced_pod, namespace, label_selector=f"{WORKLOAD_LABEL}={name}"
        )
        now = time.time()
        result = [self._pod(item, name, now) for item in getattr(found, "items", None) or []]
        return sorted(result, key=lambda p: (p.created_at, p.name))

    def status(self, spec: WorkloadSpec) -> WorkloadStatus:
        found = self._call(self.apps.read_namespaced_deployment, spec.name, spec.namespace)
        if found is None:
            return WorkloadStatus(0, 0, "the Deployment is missing")
        pods = self.pods(spec.namespace, spec.name)
        live = [p for p in pods if p.status_desc != "Terminating"]
        # a pod that cannot start says why (Unschedulable, ErrImageNeverPull, ...)
        reason = next(
            (
                p.status_desc
                for p in live
                if p.phase == "Pending"
                and p.status_desc not in ("", "Pending")
                and "ContainerCreating" not in p.status_desc
            ),
            "",
        )
        if not reason and (found.status.ready_replicas or 0) < spec.replicas:
            for condition in found.status.conditions or []:
                if condition.type == "ReplicaFailure" and condition.status == "True":
                    reason = f"{condition.reason}: {condition.message}"
        return WorkloadStatus(
            ready=sum(p.ready for p in live),
            total=len(live),
            reason=reason,
        )

    # -- monitors ------------------------------------------------------------------

    def node_usage(self) -> list[NodeUsage] | None:
        """Every node's capacity and use from the metrics API
        (metrics.k8s.io, served by metrics-server); None when the cluster
        does not serve it — the monitors then use the facility's own samples."""
        try:
            metrics = self.custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes")
        except self.k.exceptions.ApiException as error:
            if error.status in (404, 503):  # no metrics-server, or it is down
                return None
            raise BackendError(f"Kubernetes metrics API: {error.status} {error.reason}") from None
        except Exception as error:
            raise BackendError(f"Kubernetes API not reachable: {error}") from None
        used = {m["metadata"]["name"]: m.get("usage") or {} for m in metrics.get("items") or []}
        nodes = self._call(self.core.list_node)
        result = []
        for node in getattr(nodes, "items", None) or []:
            capacity = node.status.capacity or {}
            usage = used.get(node.metadata.name, {})
            ips = [a.address for a in node.status.addresses or [] if a.type == "InternalIP"]
            result.append(
                NodeUsage(
                    name=node.metadata.name,
                    ip=(ips or [""])[0],
                    cpu_cores=quantity(capacity.get("cpu")),
                    memory_bytes=int(quantity(capacity.get("memory"))),
                    cpu_used_cores=quantity(usage.get("cpu")),
                    memory_used_bytes=int(quantity(usage.get("memory"))),
                )
            )
        return sorted(result, key=lambda n: n.name)

    # -- engine images ---------------------------------------------------------------

    def load_image(self, path: str) -> str:
        raise BackendError(
            "a Kubernetes cluster pulls its images: push the engine to a registry the "
            "cluster can reach and send its reference"
        )

    def pull_image(self, ref: str, auth: dict[str, str] | None) -> str:
        return ref  # the kubelets pull it when a pod needs it

    def remove_image(self, ref: str) -> bool:
        return False
