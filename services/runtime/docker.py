"""The `docker` runtime: replicas are containers on a node's Docker engine.

The only module of the project that imports the Docker SDK. It talks to the
engine at `base_url` (e.g. "unix:///var/run/docker.sock", "tcp://host:2376"
with `tls`), or where DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH point,
else the local unix socket; the API version is negotiated ("auto"), so a
Debian 20.10 daemon (API 1.41) works with any SDK 7.x.

Every container is created with:
- `name` = the replica name and the labels of `base` (LABEL_MANAGED=1 and
  LABEL_REPLICA are added when the spec lacks them), so a restarted facility
  finds its containers with `list_managed()` instead of starting duplicates;
- host networking (`network_mode="host"`): the engine listens on
  127.0.0.1:<spec.port> like a local replica;
- `init=True` (docker-init as PID 1 forwards SIGTERM; without it a Python
  engine as PID 1 ignores SIGTERM and every stop waits for the SIGKILL);
- restart policy "no": the facility's reconciler restarts and counts;
- `nano_cpus` from cpu_limit, `mem_limit` = `memswap_limit` from
  memory_limit_bytes (no swap, so going over is an OOM kill: "OOMKilled" in
  the state's detail), NVIDIA `device_requests` for gpu_device_ids;
- bind mounts from spec.mounts; json-file logs capped at 3 x 10 MB;
- the working folder: when `spec.workdir` is a mount's source (the host's
  package folder) or target, that mount's target; otherwise the image's.

No image is ever pulled: images come from `load_image()` (a package's
`image` exec file, a `docker save` tar) or from scripts/build-base-image.sh.

`inspect()` never raises: a container that is gone is "missing"; when the
engine itself cannot be reached the answer is also "missing", with the reason
in `detail` (a later `start` of the same name re-adopts a container that was
running all along). The other calls raise RuntimeError_ when the engine is
down, and `stop()` of a container that is gone is a no-op.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker
import docker.errors
import docker.types
from django.conf import settings
from docker.models.containers import Container

from .base import (
    LABEL_MANAGED,
    ManagedReplica,
    ReplicaHandle,
    ReplicaSpec,
    ReplicaState,
    ReplicaStats,
    RuntimeError_,
)
from .common import check_name, describe_exit, managed_labels

_clients: dict[str, docker.DockerClient] = {}
_clients_lock = threading.Lock()


_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)?$")


def _started_at(value: str | None) -> float | None:
    """Docker's RFC 3339 time with nanoseconds -> Unix seconds (None if never)."""
    match = _TIME_RE.match(value or "")
    if match is None or match.group(1).startswith("0001-"):
        return None
    main, fraction, zone = match.groups()
    zone = "+00:00" if zone in (None, "Z") else zone
    try:
        return datetime.fromisoformat(f"{main}.{(fraction or '0')[:6]:0<6}{zone}").timestamp()
    except ValueError:
        return None


def state_from_attrs(attrs: dict[str, Any]) -> ReplicaState:
    """Map `docker inspect`'s State onto ReplicaState."""
    st = attrs.get("State") or {}
    status = str(st.get("Status") or "")
    started = _started_at(st.get("StartedAt"))
    restarts = int(attrs.get("RestartCount") or 0)
    code = st.get("ExitCode")
    if status in ("running", "restarting", "paused"):
        detail = "" if status == "running" else status
        return ReplicaState("running", None, started, restarts, detail)
    if status == "created":
        return ReplicaState("created", None, None, restarts, "created, not started")
    parts = []
    if st.get("OOMKilled"):
        parts.append("OOMKilled")
    parts.append(describe_exit(code if isinstance(code, int) else None))
    if st.get("Error"):
        parts.append(str(st["Error"]))
    if status == "dead":
        parts.append("dead")
    return ReplicaState(
        "exited",
        code if isinstance(code, int) else None,
        started,
        restarts,
        "; ".join(parts),
    )


def _cpu_percent(stats: dict[str, Any]) -> float:
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    try:
        cpu_delta = cpu["cpu_usage"]["total_usage"] - pre["cpu_usage"]["total_usage"]
        system_delta = cpu["system_cpu_usage"] - pre["system_cpu_usage"]
    except (KeyError, TypeError):
        return 0.0
    online = cpu.get("online_cpus") or len(cpu["cpu_usage"].get("percpu_usage") or []) or 1
    if system_delta <= 0 or cpu_delta < 0:
        return 0.0
    return round(cpu_delta / system_delta * online * 100.0, 2)


def _memory_bytes(stats: dict[str, Any]) -> int:
    """Usage without the page cache that can be dropped, as `docker stats` shows."""
    memory = stats.get("memory_stats") or {}
    usage = int(memory.get("usage") or 0)
    detail = memory.get("stats") or {}
    for key in ("total_inactive_file", "inactive_file"):  # cgroup v1, v2
        value = detail.get(key)
        if isinstance(value, int) and value < usage:
            return usage - value
    return usage


class DockerRuntime:
    """Replicas as Docker containers; see the module docstring."""

    name = "docker"

    def __init__(
        self, base_url: str | None = None, *, tls: Any = None, timeout_s: int = 120
    ) -> None:
        self.base_url = base_url
        self.tls = tls
        self.timeout_s = timeout_s
        self._client: docker.DockerClient | None = None

    # -- the engine ------------------------------------------------------------

    def _where(self) -> str:
        return self.base_url or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"

    def _api(self) -> docker.DockerClient:
        """The SDK client, shared by the adapters of one process per address."""
        if self._client is not None:
            return self._client
        key = f"{self._where()}|{self.timeout_s}|{id(self.tls) if self.tls else ''}"
        with _clients_lock:
            client = _clients.get(key)
            if client is None:
                try:
                    if self.base_url:
                        client = docker.DockerClient(
                            base_url=self.base_url,
                            version="auto",
                            timeout=self.timeout_s,
                            tls=self.tls or False,
                        )
                    else:
                        client = docker.from_env(version="auto", timeout=self.timeout_s)
                except docker.errors.DockerException as error:
                    raise RuntimeError_(self._down_reason(error))
                _clients[key] = client
        self._client = client
        return client

    def _down_reason(self, error: Exception) -> str:
        return f"Docker engine not reachable at {self._where()}: {error}"

    def _get(self, ref: str) -> Container | None:
        """The container, None when it is gone; RuntimeError_ when the engine is down."""
        try:
            return self._api().containers.get(ref)
        except docker.errors.NotFound:
            return None
        except docker.errors.APIError as error:
            raise RuntimeError_(f"Docker engine error: {error.explanation or error}")
        except (docker.errors.DockerException, OSError) as error:
            raise RuntimeError_(self._down_reason(error))
        except Exception as error:  # requests' ConnectionError and friends
            raise RuntimeError_(self._down_reason(error))

    # -- the interface -----------------------------------------------------------

    def is_available(self) -> tuple[bool, str]:
        try:
            self._api().ping()
        except RuntimeError_ as error:
            return False, str(error)
        except Exception as error:
            return False, self._down_reason(error)
        return True, ""

    def _create_kwargs(self, spec: ReplicaSpec) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "name": spec.name,
            "labels": managed_labels(spec),
            "environment": dict(spec.env),
            "detach": True,
            "network_mode": "host",
            "init": True,
            "restart_policy": {"Name": "no"},
            "log_config": docker.types.LogConfig(
                type="json-file", config={"max-size": "10m", "max-file": "3"}
            ),
            "mounts": [
                docker.types.Mount(
                    target=m.target, source=m.source, type="bind", read_only=m.read_only
                )
                for m in spec.mounts
            ],
            # hardened: no privileges, no capabilities, no setuid escalation, a
            # bounded process count; the root filesystem read-only unless the
            # operator allows writes (FACILITY_DOCKER_READ_ONLY_ROOT), with a
            # private /tmp and /run either way
            "privileged": False,
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],
            "pids_limit": int(getattr(settings, "DOCKER_PIDS_LIMIT", 1024)),
            "read_only": bool(getattr(settings, "DOCKER_READ_ONLY_ROOT", True)),
            "tmpfs": {"/tmp": "rw,size=512m", "/run": "rw,size=16m"},  # noqa: S108 - in the container
        }
        if spec.command:
            kwargs["command"] = list(spec.command)
        for m in spec.mounts:
            if spec.workdir and spec.workdir in (m.source, m.target):
                kwargs["working_dir"] = m.target
                break
        if spec.cpu_limit:
            kwargs["nano_cpus"] = int(spec.cpu_limit * 1_000_000_000)
        if spec.memory_limit_bytes:
            kwargs["mem_limit"] = int(spec.memory_limit_bytes)
            kwargs["memswap_limit"] = int(spec.memory_limit_bytes)
        if spec.gpu_device_ids:
            kwargs["device_requests"] = [
                docker.types.DeviceRequest(
                    driver="nvidia",
                    device_ids=list(spec.gpu_device_ids),
                    capabilities=[["gpu"]],
                )
            ]
        return kwargs

    def start(self, spec: ReplicaSpec) -> ReplicaHandle:
        check_name(spec.name)
        if not spec.image:
            raise RuntimeError_("the docker runtime needs an image")
        existing = self._get(spec.name)
        if existing is not None and existing.name != spec.name:
            existing = None  # the engine matched an id prefix, not the name
        if existing is not None:
            if existing.status in ("running", "restarting"):
                return ReplicaHandle(runtime=self.name, ref=str(existing.id))
            # An earlier, ended run of this name: the name must be freed.
            self._remove(existing)
        client = self._api()
        try:
            client.images.get(spec.image)
        except docker.errors.ImageNotFound:
            raise RuntimeError_(
                f"image {spec.image} is not in the Docker engine "
                "(nothing is pulled: load the package's image file first)"
            )
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))
        kwargs = self._create_kwargs(spec)
        kwargs.pop("detach")
        try:
            container = client.containers.create(spec.image, **kwargs)
        except docker.errors.APIError as error:
            if error.status_code == 409:  # created meanwhile by another worker
                again = self._get(spec.name)
                if again is not None and again.name == spec.name and again.status == "running":
                    return ReplicaHandle(runtime=self.name, ref=str(again.id))
            raise RuntimeError_(f"could not create the container: {error.explanation or error}")
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))
        return ReplicaHandle(runtime=self.name, ref=self._start_or_remove(container))

    @staticmethod
    def _start_or_remove(container: Container) -> str:
        """Start a created container; one that cannot start is removed, so
        its name is free for the next attempt."""
        try:
            container.start()
        except docker.errors.DockerException as error:
            reason = getattr(error, "explanation", None) or str(error)
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
            raise RuntimeError_(f"could not start the container: {reason}")
        return str(container.id)

    def _remove(self, container: Container) -> None:
        try:
            container.remove(force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as error:
            if error.status_code != 409:  # 409: removal already in progress
                raise RuntimeError_(f"could not remove the container: {error.explanation}")

    def stop(self, handle: ReplicaHandle, timeout_s: float = 10) -> None:
        container = self._get(handle.ref)
        if container is None:
            return
        try:
            if container.status in ("running", "restarting", "paused"):
                container.stop(timeout=max(0, math.ceil(timeout_s)))
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            pass  # the forced removal below kills it
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))
        self._remove(container)

    def inspect(self, handle: ReplicaHandle) -> ReplicaState:
        try:
            container = self._get(handle.ref)
        except RuntimeError_ as error:
            return ReplicaState("missing", detail=str(error))
        if container is None:
            return ReplicaState("missing", detail="no such container")
        return state_from_attrs(container.attrs)

    def logs(self, handle: ReplicaHandle, tail: int = 100) -> str:
        container = self._get(handle.ref)
        if container is None:
            return ""
        try:
            data = container.logs(stdout=True, stderr=True, tail=max(0, int(tail)))
        except docker.errors.NotFound:
            return ""
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))
        return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)

    def stats(self, handle: ReplicaHandle) -> ReplicaStats | None:
        container = self._get(handle.ref)
        if container is None or container.status != "running":
            return None
        try:
            raw = container.stats(stream=False)
        except docker.errors.NotFound:
            return None
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))
        if not isinstance(raw, dict) or not raw.get("memory_stats"):
            return None  # it stopped while being sampled
        return ReplicaStats(cpu_percent=_cpu_percent(raw), memory_bytes=_memory_bytes(raw))

    def list_managed(self) -> list[ManagedReplica]:
        try:
            containers = self._api().containers.list(
                all=True, filters={"label": f"{LABEL_MANAGED}=1"}, ignore_removed=True
            )
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))
        return [
            ManagedReplica(
                handle=ReplicaHandle(runtime=self.name, ref=str(c.id)),
                labels=dict(c.labels or {}),
                state=state_from_attrs(c.attrs),
            )
            for c in containers
        ]

    # -- images ------------------------------------------------------------------

    def load_image(self, path: str) -> list[str]:
        """`docker load` a `docker save` tar (a package's `image` exec file).
        Returns the references the tar names ("repo:tag"), or the image ids
        ("sha256:...") of the untagged images it holds."""
        client = self._api()
        loaded: list[str] = []
        try:
            with open(path, "rb") as f:
                for chunk in client.api.load_image(f):
                    if "errorDetail" in chunk:
                        raise RuntimeError_(
                            f"docker load of {path} failed: {chunk['errorDetail'].get('message')}"
                        )
                    match = re.search(r"^Loaded image(?: ID)?: (\S+)", chunk.get("stream") or "")
                    if match:
                        loaded.append(match.group(1))
        except OSError as error:
            raise RuntimeError_(f"cannot read the image file {path}: {error}")
        except docker.errors.DockerException as error:
            reason = getattr(error, "explanation", None) or str(error)
            raise RuntimeError_(f"docker load of {path} failed: {reason}")
        if not loaded:
            raise RuntimeError_(f"docker load of {path} found no image in it")
        return loaded

    def image_id(self, ref: str) -> str | None:
        """The id ("sha256:...") of the image `ref` names, None when absent."""
        try:
            return str(self._api().images.get(ref).id)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))

    def has_image(self, ref: str) -> bool:
        try:
            self._api().images.get(ref)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))
        return True

    # -- labelled containers (the /CCP docker backend) ----------------------------
    # Added for ccp.backends.docker: containers it starts carry their own labels
    # (facility.managed="ccp", never "1", so the services' orphan sweep and
    # list_managed() leave them alone).

    def list_labelled(self, label: str) -> list[LabelledContainer]:
        """Every container, running or not, with `label` ("key" or "key=value")."""
        try:
            containers = self._api().containers.list(
                all=True, filters={"label": label}, ignore_removed=True
            )
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))
        return [_labelled(c) for c in containers]

    def start_container(self, spec: ReplicaSpec, entrypoint: list[str] | None = None) -> str:
        """Create and start a container named spec.name (its labels as given,
        plus those of managed_labels unless set), with the ENTRYPOINT replaced
        when `entrypoint` is given; an ended container of that name is removed
        first. Returns the container id; RuntimeError_ with the reason."""
        check_name(spec.name)
        existing = self._get(spec.name)
        if existing is not None and existing.name == spec.name:
            self._remove(existing)
        client = self._api()
        if not self.has_image(spec.image):
            raise RuntimeError_(f"image {spec.image} is not in the Docker engine")
        kwargs = self._create_kwargs(spec)
        kwargs.pop("detach")
        if entrypoint is not None:
            kwargs["entrypoint"] = list(entrypoint)
        try:
            container = client.containers.create(spec.image, **kwargs)
        except docker.errors.APIError as error:
            raise RuntimeError_(f"could not create the container: {error.explanation or error}")
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))
        return self._start_or_remove(container)

    def remove_container(self, ref: str, timeout_s: float = 5) -> None:
        """Stop (SIGTERM, then SIGKILL after timeout_s) and remove; idempotent."""
        self.stop(ReplicaHandle(runtime=self.name, ref=ref), timeout_s=timeout_s)

    def pull_image(self, ref: str, auth_config: dict[str, str] | None = None) -> str:
        """`docker pull` ref (with {"username", "password"} when given);
        returns the reference pulled."""
        repository, tag = _split_reference(ref)
        try:
            self._api().images.pull(repository, tag=tag, auth_config=auth_config or None)
        except docker.errors.APIError as error:
            raise RuntimeError_(f"docker pull {ref} failed: {error.explanation or error}")
        except docker.errors.DockerException as error:
            raise RuntimeError_(f"docker pull {ref} failed: {error}")
        except Exception as error:  # requests' ConnectionError and friends
            raise RuntimeError_(f"docker pull {ref} failed: {error}")
        return ref if tag or "@" in ref else f"{ref}:latest"

    def remove_image(self, ref: str) -> bool:
        """`docker rmi ref` (the tag; the layers go when no tag is left).
        False when there was no such image."""
        try:
            self._api().images.remove(ref, noprune=False)
        except docker.errors.ImageNotFound:
            return False
        except docker.errors.APIError as error:
            raise RuntimeError_(f"could not remove image {ref}: {error.explanation or error}")
        except docker.errors.DockerException as error:
            raise RuntimeError_(self._down_reason(error))
        return True


@dataclass(frozen=True)
class LabelledContainer:
    id: str
    name: str
    image: str  # the reference it was created from
    labels: dict[str, str]
    state: ReplicaState
    created_at: float | None  # Unix seconds
    finished_at: float | None


def _labelled(container: Container) -> LabelledContainer:
    attrs = container.attrs or {}
    return LabelledContainer(
        id=str(container.id),
        name=str(container.name),
        image=str((attrs.get("Config") or {}).get("Image") or ""),
        labels=dict(container.labels or {}),
        state=state_from_attrs(attrs),
        created_at=_started_at(attrs.get("Created")),
        finished_at=_started_at((attrs.get("State") or {}).get("FinishedAt")),
    )


def _split_reference(ref: str) -> tuple[str, str | None]:
    """Split "host:5000/a/b:1.0" into ("host:5000/a/b", "1.0"); digests stay whole."""
    if "@" in ref:
        return ref, None
    name, _, tag = ref.rpartition(":")
    if name and "/" not in tag:
        return name, tag
    return ref, None
