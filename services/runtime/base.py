"""The runtime interface: how the facility starts, watches and stops the
replicas of algorithm services, whatever runs them (a local process, a Docker
container, later a Kubernetes pod). See DESIGN.md §4.

Adapters live beside this module (`local.py`, `docker.py`); only an adapter
imports its engine's client library. `services.runtime.registry` picks one
by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Labels every replica carries, so that a restarted facility re-adopts its
# replicas instead of starting duplicates.
LABEL_MANAGED = "facility.managed"  # value "1"
LABEL_SERVICE = "facility.service"  # AlgoServiceID
LABEL_REPLICA = "facility.replica"  # replica name (unique)
LABEL_PACKAGE = "facility.package"  # AlgoFilePackageID


class RuntimeError_(Exception):
    """A runtime could not do what was asked (engine down, image missing,
    command not found). The message is shown to operators as the reason."""


@dataclass(frozen=True)
class Mount:
    source: str  # host path
    target: str  # path inside the replica (ignored by `local`)
    read_only: bool = True


@dataclass(frozen=True)
class ReplicaSpec:
    """Everything needed to start one replica."""

    name: str  # unique, [a-z0-9-], at most 63 characters
    labels: dict[str, str]
    command: list[str]  # argv; for docker, empty = the image's own command
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = ""  # local: the package folder the command runs in
    image: str = ""  # docker: the image reference
    port: int = 0  # the engine's HTTP port on 127.0.0.1 (host networking)
    cpu_limit: float | None = None  # cores
    memory_limit_bytes: int | None = None
    gpu_device_ids: tuple[str, ...] = ()  # NVIDIA card indexes or UUIDs
    mounts: tuple[Mount, ...] = ()


@dataclass(frozen=True)
class ReplicaHandle:
    runtime: str  # registry name of the adapter
    ref: str  # adapter's own reference: "pid:starttime" for local, container id for docker


@dataclass(frozen=True)
class ReplicaState:
    status: str  # "running" | "exited" | "missing" | "created"
    exit_code: int | None = None
    started_at: float | None = None  # Unix seconds
    restart_count: int = 0  # restarts done by the runtime itself
    detail: str = ""  # e.g. "OOMKilled", "exit code 1"

    @property
    def is_running(self) -> bool:
        return self.status == "running"


@dataclass(frozen=True)
class ReplicaStats:
    cpu_percent: float  # of one core
    memory_bytes: int


@dataclass(frozen=True)
class ManagedReplica:
    handle: ReplicaHandle
    labels: dict[str, str]
    state: ReplicaState


class ContainerRuntime(Protocol):
    name: str

    def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        """Start a replica; raises RuntimeError_ with a reason on failure.
        Starting a spec whose name is already running returns that replica."""
        ...

    def stop(self, handle: ReplicaHandle, timeout_s: float = 10) -> None:
        """Stop and remove it; SIGTERM, then SIGKILL after timeout_s.
        Idempotent: stopping a vanished replica is not an error."""
        ...

    def inspect(self, handle: ReplicaHandle) -> ReplicaState:
        """Never raises for a vanished replica: answers status "missing"."""
        ...

    def logs(self, handle: ReplicaHandle, tail: int = 100) -> str: ...

    def stats(self, handle: ReplicaHandle) -> ReplicaStats | None:
        """None when the replica is not running."""
        ...

    def list_managed(self) -> list[ManagedReplica]:
        """Every replica carrying LABEL_MANAGED, running or not, for re-adoption."""
        ...

    def is_available(self) -> tuple[bool, str]:
        """(True, "") when the runtime can start replicas, else (False, why)."""
        ...
