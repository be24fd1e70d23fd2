"""Operations on algorithm services and their replicas."""

from __future__ import annotations

import logging
import shlex
import socket
from collections import Counter
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from algorithms.choices import ExecKind, PackageStatus
from algorithms.models import AlgoFilePackage
from compute.actions import ensure_local_node
from compute.models import Node
from facility.errors import Conflict, Invalid, NotFound
from facility.queue import enqueue
from services import engine, placement
from services.choices import CPU_XPU_TYPE, ReplicaState, ServiceKind, ServiceStatus
from services.models import AlgoService, Replica, ServiceEvent, new_service_id
from services.runtime.base import (
    LABEL_MANAGED,
    LABEL_PACKAGE,
    LABEL_REPLICA,
    LABEL_SERVICE,
    Mount,
    ReplicaSpec,
)

log = logging.getLogger(__name__)

MAX_REPLICAS = 64
ENGINE_PORT_ENV = "ENGINE_PORT"


def record(service: AlgoService, kind: str, message: str = "", replica: str = "") -> None:
    ServiceEvent.objects.create(service=service, replica_name=replica, kind=kind, message=message)
    log.info("service %s %s %s %s", service.service_id, replica, kind, message)


# --- creating --------------------------------------------------------------


def runnable_package(package_id: str) -> AlgoFilePackage:
    package = AlgoFilePackage.objects.filter(pk=package_id).first()
    if package is None:
        raise NotFound(
            _("no package %(id)s: push it first (POST /CAP/AlgoFilePackages)") % {"id": package_id},
            field="AlgoFilePackageID",
        )
    if package.status not in (PackageStatus.COMPLETE, PackageStatus.HAS_RUN):
        label = PackageStatus(package.status).label
        raise Conflict(
            _("package %(id)s cannot run yet: Status %(status)s (%(label)s)")
            % {"id": package_id, "status": package.status, "label": label}
            + (f": {package.status_reason}" if package.status_reason else ""),
            field="AlgoFilePackageID",
        )
    return package


def choose_runtime(package: AlgoFilePackage) -> str:
    forced = settings.FACILITY_RUNTIME
    if forced in ("local", "docker"):
        return str(forced)
    return "docker" if package.bin_type == ExecKind.IMAGE else "local"


def xpu_requirement(package: AlgoFilePackage, xpu_type: str) -> dict:
    """The algo.yaml Xpu entry for this XpuType (Vendor_Accelerator), else the first."""
    entries = (package.runtime or {}).get("Xpu", []) or []
    for entry in entries:
        name = f"{entry.get('Vendor', '')}_{entry.get('Accelerator', '')}"
        if placement.same_xpu_type(name, xpu_type) or placement.same_xpu_type(
            entry.get("Accelerator", ""), xpu_type
        ):
            return entry
    return entries[0] if entries else {}


def check_env(package: AlgoFilePackage, env: list[dict[str, str]]) -> list[dict[str, str]]:
    declared = [item["Name"] for item in (package.runtime or {}).get("Env", [])]
    for index, item in enumerate(env):
        if item["Name"] not in declared:
            allowed = ", ".join(declared) or "none"
            raise Invalid(
                _("%(name)s is not declared by the package's algo.yaml (declared: %(allowed)s)")
                % {"name": item["Name"], "allowed": allowed},
                field=f"Env[{index}].Name",
            )
    return env


def port_is_free(port: int) -> bool:
    """Nothing listens on it. SO_REUSEADDR as engines bind (http.server
    does): connections of a stopped engine in TIME_WAIT do not count."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def allocate_ports(node: Node, count: int, also_taken: set[int]) -> list[int]:
    low, high = (int(part) for part in settings.ENGINE_PORT_RANGE.split("-", 1))
    taken = (
        set(
            Replica.objects.filter(node=node, state__in=ReplicaState.live()).values_list(
                "port", flat=True
            )
        )
        | also_taken
    )
    ports: list[int] = []
    for port in range(low, high + 1):
        if port in taken or (node.is_local and not port_is_free(port)):
            continue
        ports.append(port)
        if len(ports) == count:
            return ports
    raise placement.NoCapacity(
        _("no free engine port on %(node)s in %(range)s")
        % {"node": node.name, "range": settings.ENGINE_PORT_RANGE}
    )


def create_service(
    *,
    package_id: str,
    replicas: int,
    xpu_type: str,
    env: list[dict[str, str]] | None = None,
    host_name: str = "",
    kind: str = ServiceKind.SERVICE,
    args: str = "",
) -> AlgoService:
    if not 1 <= replicas <= MAX_REPLICAS:
        raise Invalid(_("must be between 1 and %(max)d") % {"max": MAX_REPLICAS}, field="Replicas")
    ensure_local_node()
    with transaction.atomic():
        package = runnable_package(package_id)
        env = check_env(package, env or [])
        requirement = xpu_requirement(package, xpu_type)
        quota = (
            0.0
            if placement.same_xpu_type(xpu_type, CPU_XPU_TYPE)
            else float(requirement.get("Quota", 0))
        )
        capacity = int((requirement.get("Capacities") or {}).get("Stream_Video_Quota", 0))
        slots = placement.place(count=replicas, xpu_type=xpu_type, quota=quota, host_name=host_name)
        service = AlgoService.objects.create(
            service_id=new_service_id(),
            kind=kind,
            package=package,
            replicas=replicas,
            xpu_type=xpu_type,
            env=env,
            args=args,
            host_name=host_name,
            runtime=choose_runtime(package),
            xpu_quota=quota,
            stream_capacity=capacity,
            status=ServiceStatus.INIT,
        )
        _add_replicas(service, slots, first_index=0)
        record(service, "created", f"{replicas} replica(s) of {package_id} on {service.runtime}")
        enqueue("services.jobs.converge_service", service.service_id, name="start service")
    return service


def _add_replicas(service: AlgoService, slots: list[placement.Slot], first_index: int) -> None:
    by_node: dict[int, list[placement.Slot]] = {}
    for slot in slots:
        by_node.setdefault(slot.node.id, []).append(slot)
    index = first_index
    for node_slots in by_node.values():
        node = node_slots[0].node
        for slot, port in zip(
            node_slots, allocate_ports(node, len(node_slots), set()), strict=True
        ):
            Replica.objects.create(
                service=service,
                index=index,
                name=f"{service.service_id}-r{index}",
                node=node,
                card=slot.card,
                quota=slot.quota,
                port=port,
                runtime=service.runtime,
            )
            index += 1


# --- reading ---------------------------------------------------------------


def get_service(service_id: str) -> AlgoService:
    service = AlgoService.objects.visible().filter(pk=service_id).first()
    if service is None:
        raise NotFound(_("no algorithm service %(id)s") % {"id": service_id}, field="AlgoServiceID")
    return service


def search_services(
    package_id: str = "", xpu_type: str = "", kind: str = ServiceKind.SERVICE
) -> QuerySet[AlgoService]:
    queryset = AlgoService.objects.visible().filter(kind=kind)
    if package_id:
        queryset = queryset.filter(package_id=package_id)
    if xpu_type:
        queryset = queryset.filter(xpu_type__iexact=xpu_type)
    return queryset.order_by("-created_at", "service_id")


# --- deleting --------------------------------------------------------------


def delete_service(service_id: str) -> None:
    """Hide the service at once and stop its replicas in a worker; other
    services are untouched (§7.1.3 b). Deleting again succeeds."""
    with transaction.atomic():
        service = AlgoService.objects.select_for_update().filter(pk=service_id).first()
        if service is None:
            if AlgoService.history.filter(service_id=service_id, history_type="-").exists():
                return  # deleted before: repeating a delete succeeds
            raise NotFound(
                _("no algorithm service %(id)s") % {"id": service_id}, field="AlgoServiceID"
            )
        if service.deleted_at is None:
            service.deleted_at = timezone.now()
            service.status_reason = "being deleted"
            service.save()
            record(service, "deleting")
        enqueue("services.jobs.teardown_service", service.service_id, name="stop service")


# --- operating ---------------------------------------------------------------


def scale_service(service_id: str, replicas: int) -> AlgoService:
    """Add replicas (placed like new ones) or stop the highest-numbered."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise Invalid(_("must be between 1 and %(max)d") % {"max": MAX_REPLICAS}, field="Replicas")
    with transaction.atomic():
        service = AlgoService.objects.select_for_update().get(pk=service_id)
        live = list(service.replica_set.exclude(state=ReplicaState.STOPPED).order_by("index"))
        if replicas > len(live):
            per_node = Counter(r.node_id for r in live)
            slots = placement.place(
                count=replicas - len(live),
                xpu_type=service.xpu_type,
                quota=service.xpu_quota,
                host_name=service.host_name,
                service_replicas_per_node=dict(per_node),
            )
            last = service.replica_set.order_by("-index").first()
            _add_replicas(service, slots, first_index=(last.index + 1) if last else 0)
        for replica in live[replicas:]:
            replica.state, replica.reason = ReplicaState.STOPPED, "scaled down"
            replica.save()
            enqueue("services.jobs.stop_replica", replica.pk, name="stop replica")
        service.replicas = replicas
        service.save()
        record(service, "scaled", f"to {replicas} replica(s)")
        enqueue("services.jobs.converge_service", service.service_id, name="start service")
    return service


def restart_service(service_id: str) -> None:
    service = get_service(service_id)
    for replica in service.replica_set.exclude(state=ReplicaState.STOPPED):
        enqueue("services.jobs.restart_replica", replica.pk, name="restart replica")
    record(service, "restart requested")


def replica_logs(replica: Replica, tail: int = 100) -> str:
    from services.runtime.base import ReplicaHandle
    from services.runtime.registry import get_runtime

    if not replica.handle_ref:
        return ""
    try:
        return get_runtime(replica.runtime).logs(
            ReplicaHandle(runtime=replica.runtime, ref=replica.handle_ref), tail=tail
        )
    except Exception as error:  # an operator page must render even if the runtime is down
        return f"(logs unavailable: {error})"


# --- replicas --------------------------------------------------------------


def package_workdir(package: AlgoFilePackage) -> Path:
    exec_file = package.exec_file_or_none
    if package.executable_in_package() is None and exec_file is not None and exec_file.path:
        if exec_file.kind == ExecKind.ARTIFACT:
            return Path(exec_file.path)
    return Path(package.content_dir)


def engine_env(replica: Replica) -> dict[str, str]:
    service = replica.service
    declared = {
        item["Name"]: item.get("Value", "")
        for item in (service.package.runtime or {}).get("Env", [])
    }
    env = {**declared, **service.env_dict()}
    env.update(
        ENGINE_PORT=str(replica.port),
        ENGINE_HOST="127.0.0.1",
        ENGINE_ID=replica.name,
        ENGINE_CAPACITY=str(service.stream_capacity or 1),
        # images at once (POST /Images:analyze): the package's Analyze_Quota
        ENGINE_ANALYZE_QUOTA=str(
            (xpu_requirement(service.package, service.xpu_type).get("Capacities") or {}).get(
                "Analyze_Quota", 0
            )
            or 1
        ),
        EVENT_SINK_URL=f"{settings.PUBLIC_URL.rstrip('/')}/internal/engine-events",
        EVENT_SINK_TOKEN=engine.engine_token(replica.name),
    )
    if replica.card is not None and replica.runtime != "docker":
        # docker renumbers the granted card from 0 inside the container: its
        # device request does the job there
        env["CUDA_VISIBLE_DEVICES"] = replica.card.uuid or str(replica.card.index)
    return env


def replica_spec(replica: Replica, image: str = "") -> ReplicaSpec:
    service = replica.service
    package = service.package
    cmd = shlex.split((package.runtime or {}).get("Cmd", "")) + shlex.split(service.args)
    workdir = package_workdir(package)
    if replica.runtime == "local" and cmd and not Path(cmd[0]).is_absolute():
        candidate = workdir / cmd[0]
        if candidate.exists():
            cmd[0] = str(candidate)
    gpu: tuple[str, ...] = ()
    if replica.card is not None:
        gpu = (replica.card.uuid or str(replica.card.index),)
    return ReplicaSpec(
        name=replica.name,
        labels={
            LABEL_MANAGED: "1",
            LABEL_SERVICE: service.service_id,
            LABEL_REPLICA: replica.name,
            LABEL_PACKAGE: package.package_id,
        },
        command=cmd,
        env=engine_env(replica),
        workdir=str(workdir),
        image=image,
        port=replica.port,
        gpu_device_ids=gpu,
        mounts=(Mount(source=str(workdir), target="/package", read_only=True),)
        if replica.runtime == "docker"
        else (),
    )


def restarts_in_window(replica: Replica) -> int:
    since = timezone.now() - timedelta(minutes=10)
    return ServiceEvent.objects.filter(
        service_id=replica.service_id, replica_name=replica.name, kind="restarted", at__gte=since
    ).count()


def refresh_service_status(service: AlgoService) -> None:
    states = Counter(service.replica_set.values_list("state", flat=True))
    if service.deleted_at is not None:
        return
    failed = service.replica_set.filter(state=ReplicaState.FAILED)
    exhausted = [
        r for r in failed if restarts_in_window(r) >= settings.REPLICA_MAX_RESTARTS_PER_10MIN
    ]
    if exhausted:
        status, reason = ServiceStatus.ERROR, f"{exhausted[0].name}: {exhausted[0].reason}"
    elif states[ReplicaState.RUNNING] >= service.replicas:
        # OVERLOAD is RUNNING with more tasks than streams: the task layer decides it
        if service.status == ServiceStatus.OVERLOAD:
            return
        status, reason = ServiceStatus.RUNNING, ""
    elif failed and not states[ReplicaState.RUNNING]:
        first = failed[0]
        status, reason = ServiceStatus.INIT, f"{first.name}: {first.reason}"
    else:
        status = ServiceStatus.INIT
        reason = f"{states[ReplicaState.RUNNING]} of {service.replicas} replicas healthy"
    if (status, reason) != (service.status, service.status_reason):
        service.status, service.status_reason = status, reason
        service.save(update_fields=["status", "status_reason", "updated_at"])


def mark_package_has_run(package_id: str) -> None:
    with transaction.atomic():
        package = AlgoFilePackage.objects.select_for_update().get(pk=package_id)
        if not package.has_run and package.status == PackageStatus.COMPLETE:
            package.mark_has_run()
            package.save()


# --- CAD machine packages (表4–7) ---------------------------------------------


def machine_service(package_id: str) -> AlgoService | None:
    return (
        AlgoService.objects.visible()
        .filter(kind=ServiceKind.MACHINE, package_id=package_id)
        .first()
    )


def install_on_device(package_id: str, args: str) -> AlgoService:
    """表4: run the package on this device; installing again is a no-op."""
    existing = machine_service(package_id)
    if existing is not None:
        return existing
    node = ensure_local_node()
    xpu_type = ""
    for word in shlex.split(args):
        key, _, value = word.partition("=")
        if key.lower() == "xputype" and value:
            xpu_type = value
    if not xpu_type:
        xpu_type = node.xpu_type
    return create_service(
        package_id=package_id,
        replicas=1,
        xpu_type=xpu_type,
        host_name=node.ip or node.name,
        kind=ServiceKind.MACHINE,
        args=args,
    )


def uninstall_from_device(package_id: str) -> None:
    """表5: stop the package on this device; repeating it succeeds."""
    if not AlgoFilePackage.objects.filter(pk=package_id).exists():
        raise NotFound(_("no package %(id)s") % {"id": package_id}, field="AlgoFilePackageID")
    for service in AlgoService.objects.visible().filter(
        kind=ServiceKind.MACHINE, package_id=package_id
    ):
        delete_service(service.service_id)


def device_packages(status: str = "") -> list[tuple[AlgoFilePackage, AlgoService | None]]:
    installed = {
        s.package_id: s for s in AlgoService.objects.visible().filter(kind=ServiceKind.MACHINE)
    }
    rows = []
    for package in AlgoFilePackage.objects.filter(
        status__in=[PackageStatus.COMPLETE, PackageStatus.HAS_RUN]
    ).order_by("-created_at"):
        service = installed.get(package.package_id)
        state = "RUNNING" if service is not None else "STOPPED"
        if not status or status == state:
            rows.append((package, service))
    return rows
