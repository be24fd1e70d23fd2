"""The interface every /CCP backend implements (docker now, kubernetes).

A backend owns how a workload (表G.1) becomes running pods and how engine
images reach the cluster. The facility keeps the *desired* workloads in its
database (ccp.models.Workload); pods are always *observed* from the backend.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class BackendError(Exception):
    """The backend could not do what was asked; the message says why."""


@dataclass(frozen=True)
class WorkloadSpec:
    namespace: str
    name: str
    labels: dict[str, str]
    label_selector: dict[str, str]
    replicas: int
    container_name: str
    image: str
    cpu: int  # cores
    xpu_type: str
    xpu: float  # cards, fractional where a card is shared
    memory_gi: int
    command: list[str] = field(default_factory=list)  # replaces the ENTRYPOINT when set
    args: list[str] = field(default_factory=list)  # replaces the CMD when set
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Pod:
    """One pod as 表G.19 PodVO describes it."""

    name: str
    node_name: str
    host_ip: str
    pod_ip: str
    port: int
    phase: str  # Pending | Running | Succeeded | Failed | Unknown
    status_desc: str
    image: str
    restarts: int
    age_s: int
    ready: bool
    deployment: str
    labels: dict[str, str]
    created_at: float = 0.0


@dataclass(frozen=True)
class WorkloadStatus:
    ready: int
    total: int
    reason: str = ""

    def text(self, desired: int) -> str:
        if self.reason:
            return f"Pending: {self.reason}"[:256]
        if desired == 0 and self.total == 0:
            return "Scaled to 0"
        state = "Running" if self.ready >= desired else "Progressing"
        return f"{state} {self.ready}/{desired} ready"


class Backend(Protocol):
    name: str

    def is_available(self) -> tuple[bool, str]: ...

    # -- workloads -----------------------------------------------------------------
    def apply(self, spec: WorkloadSpec) -> str:
        """Create or update the workload towards `spec`; '' when all is well,
        else the reason it cannot (yet) be met (the workload stays asked for)."""
        ...

    def delete(self, namespace: str, name: str) -> list[str]:
        """Remove the workload and its pods; the names of the pods removed."""
        ...

    def pods(self, namespace: str, name: str) -> list[Pod]: ...

    def status(self, spec: WorkloadSpec) -> WorkloadStatus: ...

    def reconcile(self, specs: list[WorkloadSpec]) -> dict[tuple[str, str], str]:
        """Bring the backend to the specs (all the workloads that exist) and
        remove what no spec claims; the reason per workload that is not met."""
        ...

    # -- engine images ---------------------------------------------------------------
    def load_image(self, path: str) -> str:
        """A `docker save` tar -> the image reference it holds."""
        ...

    def pull_image(self, ref: str, auth: dict[str, str] | None) -> str: ...

    def remove_image(self, ref: str) -> bool: ...
