"""Runtimes that run algorithm-service replicas (DESIGN.md §4).

The interface is in `base`; adapters are `local` and `docker`; use
`get_runtime(name)` to get one. Importing this package does not import the
Docker SDK.
"""

from .base import (
    ContainerRuntime,
    ManagedReplica,
    Mount,
    ReplicaHandle,
    ReplicaSpec,
    ReplicaState,
    ReplicaStats,
    RuntimeError_,
)
from .registry import RUNTIME_NAMES, default_runtime_name, get_runtime

__all__ = [
    "RUNTIME_NAMES",
    "ContainerRuntime",
    "ManagedReplica",
    "Mount",
    "ReplicaHandle",
    "ReplicaSpec",
    "ReplicaState",
    "ReplicaStats",
    "RuntimeError_",
    "default_runtime_name",
    "get_runtime",
]
