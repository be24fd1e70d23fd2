"""Pick a runtime adapter by name (DESIGN.md §4).

`get_runtime("local")` / `get_runtime("docker")`; `get_runtime()` uses the
setting FACILITY_RUNTIME when it names an adapter, else "local" (the setting
"auto" means a per-package choice, made by the caller). The docker adapter
talks to FACILITY_DOCKER_HOST when that setting exists, else DOCKER_HOST or
the local socket.

The docker adapter is imported only when asked for, so the facility runs
where the Docker SDK is unused. Each call returns a new adapter object: they
are cheap (docker clients are shared per address), keep no state that matters
between calls (the local runtime's is in files, docker's in the engine), and a
fresh one sees settings overridden in tests.
"""

from __future__ import annotations

from django.conf import settings

from .base import ContainerRuntime, RuntimeError_

RUNTIME_NAMES = ("local", "docker")


def default_runtime_name() -> str:
    """FACILITY_RUNTIME when it names an adapter; "local" otherwise ("auto",
    which lets the facility choose per package, or unset)."""
    name = str(getattr(settings, "FACILITY_RUNTIME", "local") or "local")
    return name if name in RUNTIME_NAMES else "local"


def get_runtime(name: str | None = None) -> ContainerRuntime:
    """The adapter called `name` (None or "" = the configured default).
    Raises RuntimeError_ for an unknown name."""
    name = name or default_runtime_name()
    if name == "local":
        from .local import LocalRuntime

        return LocalRuntime()
    if name == "docker":
        from .docker import DockerRuntime

        return DockerRuntime(base_url=getattr(settings, "FACILITY_DOCKER_HOST", None) or None)
    raise RuntimeError_(f"unknown runtime {name!r}; known: {', '.join(RUNTIME_NAMES)}")
