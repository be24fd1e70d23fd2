"""Background entry points for services: start replicas, tear services
down, and the reconcile pass that restarts crashed replicas, re-adopts
survivors of a facility restart and stops orphans. Each takes primary keys
and is safe to run twice."""

from __future__ import annotations

import json
import logging
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from services import actions, engine, placement
from services.choices import ReplicaState
from services.models import AlgoService, Replica
from services.runtime.base import LABEL_REPLICA, ReplicaHandle, RuntimeError_
from services.runtime.registry import get_runtime

if TYPE_CHECKING:
    from services.runtime.docker import DockerRuntime

log = logging.getLogger(__name__)


def _handle(replica: Replica) -> ReplicaHandle:
    return ReplicaHandle(runtime=replica.runtime, ref=replica.handle_ref)


def saved_images(path: Path) -> list[tuple[str, str]]:
    """(reference, image id) of the tagged images a `docker save` tar holds,
    from its manifest.json; [] when it cannot tell (then it is loaded)."""
    try:
        with tarfile.open(path, mode="r:") as tar:  # uncompressed: headers only
            member = next((m for m in tar if m.name.lstrip("./") == "manifest.json"), None)
            handle = tar.extractfile(member) if member is not None else None
            if handle is None or member is None or member.size > 1 << 20:
                return []
            manifest = json.loads(handle.read())
    except (OSError, tarfile.TarError, ValueError):
        return []
    saved: list[tuple[str, str]] = []
    for entry in manifest if isinstance(manifest, list) else []:
        config = str(entry.get("Config") or "")
        digest = config.rsplit("/", 1)[-1].removesuffix(".json")
        if len(digest) != 64 or not entry.get("RepoTags"):
            return []
        saved.extend((str(ref), f"sha256:{digest}") for ref in entry["RepoTags"])
    return saved


def _image_for(service: AlgoService) -> str:
    """Load the package's image into the node's engine once (docker)."""
    if service.runtime != "docker" or service.image:
        return service.image
    package = service.package
    path = package.executable_in_package()
    exec_file = package.exec_file_or_none
    if path is None and exec_file is not None and exec_file.path:
        path = Path(exec_file.path)
    if path is None:
        raise RuntimeError_("the package has no image file to load")
    runtime = cast("DockerRuntime", get_runtime("docker"))
    # docker load of a large tar takes seconds even when every layer is there:
    # skip it when the engine already has each image the tar names, same id
    saved = saved_images(path)
    if saved and all(runtime.image_id(ref) == image_id for ref, image_id in saved):
        tags = [ref for ref, _ in saved]
    else:
        tags = runtime.load_image(str(path))
    if not tags:
        raise RuntimeError_("the image file holds no tagged image")
    AlgoService.objects.filter(pk=service.pk).update(image=tags[0])
    service.image = tags[0]
    return service.image


def _runs_already(runtime: Any, name: str) -> bool:
    return any(
        item.labels.get(LABEL_REPLICA) == name and item.state.is_running
        for item in runtime.list_managed()
    )


def start_replica(replica: Replica, *, restart: bool = False) -> None:
    service = replica.service
    runtime = get_runtime(replica.runtime)
    try:
        image = _image_for(service)
        if restart and replica.handle_ref:
            runtime.stop(_handle(replica), timeout_s=5)
        if (
            replica.node.is_local
            and not actions.port_is_free(replica.port)
            and not _runs_already(runtime, replica.name)
        ):
            # taken by another program since it was allocated: move
            replica.port = actions.allocate_ports(replica.node, 1, {replica.port})[0]
            replica.save(update_fields=["port", "updated_at"])
        handle = runtime.start(actions.replica_spec(replica, image=image))
    except (RuntimeError_, placement.NoCapacity) as error:
        replica.state, replica.reason = ReplicaState.FAILED, f"start failed: {error}"
        replica.save()
        actions.record(service, "start failed", str(error), replica.name)
        return
    replica.handle_ref = handle.ref
    replica.state = ReplicaState.STARTING
    replica.reason = "waiting for the engine's health check"
    replica.started_at = timezone.now()
    if restart:
        replica.restarts += 1
    replica.save()
    actions.record(service, "restarted" if restart else "started", handle.ref, replica.name)


def check_replica(replica: Replica) -> bool:
    """Inspect one starting/running replica; True when it is healthy."""
    runtime = get_runtime(replica.runtime)
    state = runtime.inspect(_handle(replica))
    if not state.is_running:
        detail = state.detail or (
            f"exit code {state.exit_code}" if state.exit_code is not None else state.status
        )
        tail = runtime.logs(_handle(replica), tail=5).strip().splitlines()[-3:]
        replica.state = ReplicaState.FAILED
        replica.reason = f"replica {state.status}: {detail}" + (
            f" — last output: {' | '.join(tail)}" if tail else ""
        )
        replica.save()
        actions.record(replica.service, "exited", replica.reason, replica.name)
        return False
    try:
        answer = engine.health(replica.engine_url, timeout_s=settings.ENGINE_HEALTH_TIMEOUT_S)
        engine_id = str(answer.get("EngineID") or replica.name)
        if engine_id != replica.name:
            # another process holds the replica's port (ours could not bind it)
            raise engine.EngineUnavailable(f"port {replica.port} answered by engine {engine_id}")
    except engine.EngineUnavailable as error:
        if replica.state == ReplicaState.RUNNING:
            replica.reason = str(error)
            replica.save(update_fields=["reason", "updated_at"])
        return False
    first_time = replica.state != ReplicaState.RUNNING
    replica.state, replica.reason, replica.healthy_at = ReplicaState.RUNNING, "", timezone.now()
    replica.save()
    if first_time:
        actions.record(replica.service, "healthy", replica.engine_url, replica.name)
        actions.mark_package_has_run(replica.service.package_id)
    return True


def converge_service(service_id: str) -> None:
    """Start the replicas that are not running and wait (bounded) until the
    engines answer."""
    service = AlgoService.objects.visible().filter(pk=service_id).first()
    if service is None:
        return
    for replica in service.replica_set.filter(state__in=[ReplicaState.PENDING]):
        start_replica(replica)
    deadline = time.monotonic() + settings.ENGINE_START_TIMEOUT_S
    while time.monotonic() < deadline:
        waiting = list(service.replica_set.filter(state=ReplicaState.STARTING))
        for replica in waiting:
            check_replica(replica)
        actions.refresh_service_status(service)
        if not service.replica_set.filter(state=ReplicaState.STARTING).exists():
            break
        time.sleep(0.2)
    for replica in service.replica_set.filter(state=ReplicaState.STARTING):
        if time.monotonic() >= deadline:
            limit = settings.ENGINE_START_TIMEOUT_S
            replica.reason = f"engine did not answer its health check within {limit:g} s"
            replica.save(update_fields=["reason", "updated_at"])
    actions.refresh_service_status(service)


def _stop(replica: Replica) -> None:
    """Stop a replica; an engine that cannot be reached is left to the orphan
    sweep of a later reconcile pass."""
    if not replica.handle_ref:
        return
    try:
        get_runtime(replica.runtime).stop(_handle(replica), timeout_s=10)
    except RuntimeError_ as error:
        log.warning("replica %s not stopped now: %s", replica.name, error)


def stop_replica(replica_pk: int) -> None:
    replica = Replica.objects.filter(pk=replica_pk).first()
    if replica is not None:
        _stop(replica)


def restart_replica(replica_pk: int) -> None:
    replica = (
        Replica.objects.select_related("service", "service__package", "node", "card")
        .filter(pk=replica_pk, service__deleted_at__isnull=True)
        .exclude(state=ReplicaState.STOPPED)
        .first()
    )
    if replica is not None:
        start_replica(replica, restart=True)
        converge_service(replica.service_id)


def teardown_service(service_id: str) -> None:
    service = AlgoService.objects.filter(pk=service_id).first()
    if service is None or service.deleted_at is None:
        return
    for replica in service.replica_set.exclude(state=ReplicaState.STOPPED):
        _stop(replica)
        replica.state, replica.reason = ReplicaState.STOPPED, "service deleted"
        replica.save()
    actions.record(service, "deleted")
    with transaction.atomic():
        service.delete()


def reconcile_services() -> dict[str, int]:
    """One pass: restart crashed replicas (bounded by a restart budget),
    promote starting ones, stop orphans."""
    counts = {"checked": 0, "restarted": 0, "orphans": 0}
    live = Replica.objects.filter(
        state__in=[ReplicaState.STARTING, ReplicaState.RUNNING, ReplicaState.FAILED],
        service__deleted_at__isnull=True,
    ).select_related("service", "service__package", "node", "card")
    touched: set[str] = set()
    for replica in live:
        counts["checked"] += 1
        touched.add(replica.service_id)
        if replica.state != ReplicaState.FAILED:
            check_replica(replica)
        if replica.state == ReplicaState.FAILED:
            if actions.restarts_in_window(replica) < settings.REPLICA_MAX_RESTARTS_PER_10MIN:
                start_replica(replica, restart=True)
                counts["restarted"] += 1
    for replica in Replica.objects.filter(
        state=ReplicaState.PENDING, service__deleted_at__isnull=True
    ):
        start_replica(replica)
        touched.add(replica.service_id)
    for service in AlgoService.objects.filter(pk__in=touched):
        actions.refresh_service_status(service)
    counts["orphans"] = stop_orphans()
    return counts


def stop_orphans() -> int:
    """Replicas the runtimes run that no live row claims (e.g. a service
    deleted while the facility was down)."""
    known = set(
        Replica.objects.exclude(state=ReplicaState.STOPPED)
        .filter(service__deleted_at__isnull=True)
        .values_list("name", flat=True)
    )
    stopped = 0
    for name in sorted(set(Replica.objects.values_list("runtime", flat=True)) | {"local"}):
        try:
            runtime = get_runtime(name)
            available, _ = runtime.is_available()
            if not available:
                continue
            managed = runtime.list_managed()
        except RuntimeError_:
            continue
        for item in managed:
            if item.labels.get(LABEL_REPLICA) not in known:
                runtime.stop(item.handle, timeout_s=5)
                stopped += 1
                log.info("stopped orphan replica %s", item.labels.get(LABEL_REPLICA))
    return stopped
