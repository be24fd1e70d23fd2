"""The `docker` backend: one Docker engine is the cluster's only node.

A workload is the set of containers labelled `ccp.namespace`/`ccp.workload`,
kept at Replicas by `reconcile()` (the facility's `ccp` loop, and after each
create/scale). A pod is one container, pod name = container name
(`<workload>-<5 characters>`), run with host networking: PodIP = HostIP =
CCP_DOCKER_HOST_IP (127.0.0.1), and each pod gets its own engine port
(ENGINE_PORT), because pods share the host's addresses.

A pod whose container ended is restarted in place, as a kubelet does: a new
container of the same name, port and creation time, with `ccp.restarts`
one higher (a back-off of 10 s, 20 s, ... up to 5 min after the second
restart). The pods' state lives only in the Docker engine (labels), so a
restarted facility adopts them as they are.

Every container carries facility.managed="ccp" (not "1"), so the algorithm
services' orphan sweep never touches them.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import time
from collections import defaultdict
from typing import cast

from ccp import conf
from ccp.backends.base import BackendError, Pod, WorkloadSpec, WorkloadStatus
from ccp.choices import PodPhase
from services import engine as engine_client
from services.runtime.base import LABEL_MANAGED, ReplicaSpec, RuntimeError_
from services.runtime.docker import DockerRuntime, LabelledContainer
from services.runtime.registry import get_runtime

L_WORKLOAD = "ccp.workload"
L_NAMESPACE = "ccp.namespace"
L_PORT = "ccp.port"
L_RESTARTS = "ccp.restarts"
L_CREATED = "ccp.created"
L_CONTAINER = "ccp.container"
L_USER_KEYS = "ccp.labels"  # JSON list of the keys that are the workload's own Labels
MANAGED_VALUE = "ccp"

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # as Kubernetes' rand.String
BACKOFF_START_S = 10
BACKOFF_MAX_S = 300


def pod_name(workload: str) -> str:
    return f"{workload}-" + "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5))


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value or default)
    except ValueError:
        return default


def _float(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def free_port(taken: set[int]) -> int:
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in taken:
            return port
    raise BackendError("no free port for a pod")


def backoff_s(restarts: int) -> float:
    if restarts <= 0:
        return 0.0
    return float(min(BACKOFF_START_S * 2 ** (restarts - 1), BACKOFF_MAX_S))


class DockerBackend:
    name = "docker"

    def __init__(self) -> None:
        self.runtime = cast(DockerRuntime, get_runtime("docker"))

    def is_available(self) -> tuple[bool, str]:
        return self.runtime.is_available()

    # -- observing ---------------------------------------------------------------

    def _containers(
        self, namespace: str | None = None, name: str | None = None
    ) -> list[LabelledContainer]:
        label = f"{L_WORKLOAD}={name}" if name else L_WORKLOAD
        try:
            found = self.runtime.list_labelled(label)
        except RuntimeError_ as error:
            raise BackendError(str(error)) from None
        return [
            c
            for c in found
            if c.labels.get(LABEL_MANAGED) == MANAGED_VALUE
            and (namespace is None or c.labels.get(L_NAMESPACE) == namespace)
        ]

    def _pod(self, c: LabelledContainer, now: float) -> Pod:
        host_ip = conf.docker_host_ip()
        port = _int(c.labels.get(L_PORT))
        restarts = _int(c.labels.get(L_RESTARTS)) + c.state.restart_count
        created = _float(c.labels.get(L_CREATED)) or c.created_at or now
        ready = False
        status = c.state.status
        if status == "running":
            phase = PodPhase.RUNNING
            try:
                engine_client.health(f"http://{host_ip}:{port}", timeout_s=conf.health_timeout_s())
                ready, desc = True, "running; the engine's /Health is READY"
            except engine_client.EngineUnavailable as error:
                desc = f"running; not ready: {error}"
            if c.state.detail:
                desc = f"{c.state.detail}; {desc}"
        elif status == "created":
            phase, desc = PodPhase.PENDING, "ContainerCreating"
        elif status == "exited":
            phase = PodPhase.SUCCEEDED if c.state.exit_code == 0 else PodPhase.FAILED
            wait = backoff_s(_int(c.labels.get(L_RESTARTS)))
            desc = f"container ended: {c.state.detail}; restarted by the reconciler"
            if wait:
                desc += f" (CrashLoopBackOff {wait:.0f} s)"
        else:
            phase, desc = PodPhase.UNKNOWN, c.state.detail or status
        try:
            keys = json.loads(c.labels.get(L_USER_KEYS) or "[]")
        except ValueError:
            keys = []
        return Pod(
            name=c.name,
            node_name=conf.docker_node_name(),
            host_ip=host_ip,
            pod_ip=host_ip,
            port=port,
            phase=str(phase),
            status_desc=desc[:256],
            image=c.image,
            restarts=restarts,
            age_s=max(0, int(now - created)),
            ready=ready,
            deployment=c.labels.get(L_WORKLOAD, ""),
            labels={k: c.labels[k] for k in keys if k in c.labels},
            created_at=created,
        )

    def pods(self, namespace: str, name: str) -> list[Pod]:
        now = time.time()
        pods = [self._pod(c, now) for c in self._containers(namespace, name)]
        return sorted(pods, key=lambda p: (p.created_at, p.name))

    def status(self, spec: WorkloadSpec) -> WorkloadStatus:
        pods = self.pods(spec.namespace, spec.name)
        return WorkloadStatus(ready=sum(p.ready for p in pods), total=len(pods))

    # -- changing ----------------------------------------------------------------

    def _placement_problem(self, spec: WorkloadSpec) -> str:
        cores = os.cpu_count() or 1
        if spec.cpu > cores:
            return f"Unschedulable: Cpu {spec.cpu} is more than the node's {cores} cores"
        if spec.xpu > 0 and not conf.docker_xpu_devices().get(spec.xpu_type):
            return (
                f"Unschedulable: the Docker node has no XpuType {spec.xpu_type!r} "
                "(setting CCP_DOCKER_XPU_DEVICES)"
            )
        return ""

    def _start(
        self,
        spec: WorkloadSpec,
        name: str,
        port: int,
        restarts: int,
        created: float,
    ) -> None:
        host_ip = conf.docker_host_ip()
        user = {k: v for k, v in spec.labels.items() if not k.startswith(("ccp.", "facility."))}
        labels = {
            **user,
            LABEL_MANAGED: MANAGED_VALUE,
            L_WORKLOAD: spec.name,
            L_NAMESPACE: spec.namespace,
            L_PORT: str(port),
            L_RESTARTS: str(restarts),
            L_CREATED: f"{created:.3f}",
            L_CONTAINER: spec.container_name,
            L_USER_KEYS: json.dumps(sorted(user)),
        }
        env = {
            **spec.env,
            "ENGINE_PORT": str(port),
            "ENGINE_HOST": "127.0.0.1" if host_ip.startswith("127.") else "0.0.0.0",  # noqa: S104
            "ENGINE_ID": name,
        }
        devices: tuple[str, ...] = ()
        if spec.xpu > 0:
            cards = conf.docker_xpu_devices().get(spec.xpu_type, [])
            devices = tuple(cards[: max(1, math.ceil(spec.xpu))])
        replica = ReplicaSpec(
            name=name,
            labels=labels,
            command=list(spec.args),
            env=env,
            image=spec.image,
            port=port,
            cpu_limit=float(spec.cpu) or None,
            memory_limit_bytes=spec.memory_gi * 2**30 or None,
            gpu_device_ids=devices,
        )
        self.runtime.start_container(replica, entrypoint=list(spec.command) or None)

    def _reconcile_one(self, spec: WorkloadSpec, containers: list[LabelledContainer]) -> str:
        now = time.time()
        problem = self._placement_problem(spec)
        taken = {_int(c.labels.get(L_PORT)) for c in self._containers()}
        # restart ended pods in place (kubelet-like), after the back-off
        for c in containers:
            if c.state.status == "running":
                continue
            restarts = _int(c.labels.get(L_RESTARTS))
            if c.finished_at and now - c.finished_at < backoff_s(restarts):
                continue
            if problem:
                continue
            try:
                self._start(
                    spec,
                    c.name,
                    _int(c.labels.get(L_PORT)) or free_port(taken),
                    restarts + 1,
                    _float(c.labels.get(L_CREATED)) or now,
                )
            except RuntimeError_ as error:
                problem = str(error)
        # scale down: ended pods first, then the newest
        if len(containers) > spec.replicas:
            ranked = sorted(
                containers,
                key=lambda c: (c.state.status == "running", -_float(c.labels.get(L_CREATED))),
            )
            for c in ranked[: len(containers) - spec.replicas]:
                self.runtime.remove_container(c.id)
        # scale up
        for _ in range(spec.replicas - len(containers)):
            if problem:
                break
            port = free_port(taken)
            taken.add(port)
            try:
                self._start(spec, pod_name(spec.name), port, 0, time.time())
            except RuntimeError_ as error:
                problem = str(error)
        return problem

    def apply(self, spec: WorkloadSpec) -> str:
        return self._reconcile_one(spec, self._containers(spec.namespace, spec.name))

    def reconcile(self, specs: list[WorkloadSpec]) -> dict[tuple[str, str], str]:
        groups: dict[tuple[str, str], list[LabelledContainer]] = defaultdict(list)
        for c in self._containers():
            groups[(c.labels.get(L_NAMESPACE, ""), c.labels.get(L_WORKLOAD, ""))].append(c)
        reasons = {}
        for spec in specs:
            key = (spec.namespace, spec.name)
            reasons[key] = self._reconcile_one(spec, groups.pop(key, []))
        for leftovers in groups.values():  # workloads deleted while we were away
            for c in leftovers:
                self.runtime.remove_container(c.id, timeout_s=2)
        return reasons

    def delete(self, namespace: str, name: str) -> list[str]:
        removed = []
        for c in self._containers(namespace, name):
            self.runtime.remove_container(c.id)
            removed.append(c.name)
        return sorted(removed)

    # -- images ------------------------------------------------------------------

    def load_image(self, path: str) -> str:
        try:
            refs = self.runtime.load_image(path)
        except RuntimeError_ as error:
            raise BackendError(str(error)) from None
        tagged = [ref for ref in refs if not ref.startswith("sha256:")]
        return (tagged or refs)[0]

    def pull_image(self, ref: str, auth: dict[str, str] | None) -> str:
        try:
            return self.runtime.pull_image(ref, auth)
        except RuntimeError_ as error:
            raise BackendError(str(error)) from None

    def remove_image(self, ref: str) -> bool:
        try:
            return self.runtime.remove_image(ref)
        except RuntimeError_ as error:
            raise BackendError(str(error)) from None
