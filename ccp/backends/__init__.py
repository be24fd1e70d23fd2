"""Backends of the /CCP interfaces, picked by name (setting CCP_BACKEND)."""

from __future__ import annotations

from ccp import conf
from ccp.backends.base import Backend, BackendError

BACKEND_NAMES = ("docker", "kubernetes")


def get_backend(name: str | None = None) -> Backend:
    name = name or conf.backend_name()
    if name == "docker":
        from ccp.backends.docker import DockerBackend

        return DockerBackend()
    if name == "kubernetes":
        from ccp.backends.kubernetes import KubernetesBackend

        return KubernetesBackend()
    raise BackendError(f"unknown CCP backend {name!r}; known: {', '.join(BACKEND_NAMES)}")
