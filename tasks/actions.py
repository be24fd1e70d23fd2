"""Analysis tasks: create, update, pause, resume, delete, and scheduling
onto algorithm services (DESIGN.md §6–§7).

A task's desired state (run / keep stopped) is what the platform asked for;
its status is what is observed. `place` and `observe` move the status
toward the desired state and leave a reason whenever it is not RUNNING."""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from algorithms.choices import PackageStatus
from algorithms.models import AlgoFilePackage
from facility.errors import Conflict, Invalid, NotFound
from facility.queue import enqueue
from services import engine
from services.choices import ReplicaState, ServiceKind, ServiceStatus
from services.models import AlgoService, Replica
from tasks import streams
from tasks.choices import DesiredState, RestartPolicy, TaskStatus
from tasks.models import AlgoTask, TaskEventType

log = logging.getLogger(__name__)


# --- platform operations -------------------------------------------------------


def _check_service(service_id: str) -> AlgoService:
    service = AlgoService.objects.visible().filter(pk=service_id).first()
    if service is None:
        raise Invalid(_("no algorithm service %(id)s") % {"id": service_id}, field="AlgoServiceID")
    if service.status == ServiceStatus.ERROR:
        raise Conflict(
            _("algorithm service %(id)s is in ERROR (%(reason)s) and takes no new task")
            % {"id": service_id, "reason": service.status_reason},
            field="AlgoServiceID",
        )
    return service


def _labels(task_info: dict[str, Any]) -> tuple[str, str]:
    labels = task_info.get("Labels") or {}
    return labels.get("AlgoCaBinName", ""), labels.get("Version", "")


def _event_ids(task: AlgoTask) -> set[str]:
    return {rule.get("EventID", "") for rule in task.rules} - {""}


def _event_type_rows(task: AlgoTask, event_ids: set[str]) -> list[TaskEventType]:
    return [TaskEventType(task=task, event_id=e, scope=task.scope) for e in sorted(event_ids)]


def _set_event_types(task: AlgoTask) -> None:
    wanted = _event_ids(task)
    task.event_types.exclude(event_id__in=wanted).delete()
    have = set(task.event_types.values_list("event_id", flat=True))
    TaskEventType.objects.bulk_create(_event_type_rows(task, wanted - have))


def create_task(
    *,
    restart_policy: str,
    task_info: dict[str, Any],
    create_and_start: bool = True,
    service_id: str = "",
    scope: str = "cap",
) -> AlgoTask:
    name, version = _labels(task_info)
    requested = _check_service(service_id) if service_id else None
    if requested is None and not name:
        raise Invalid(
            _("name the algorithm (TaskInfo.Labels.AlgoCaBinName) or the service (AlgoServiceID)"),
            field="TaskInfo.Labels.AlgoCaBinName",
        )
    with transaction.atomic():
        task = AlgoTask.objects.create(
            scope=scope,
            restart_policy=restart_policy,
            create_and_start=create_and_start,
            task_info=task_info,
            algo_name=name,
            algo_version=version,
            stream_url=task_info["StreamOptions"]["VideoStreamOptions"]["Url"],
            requested_service=requested,
            desired_state=DesiredState.RUNNING if create_and_start else DesiredState.STOPPED,
            status=TaskStatus.PENDING,
            reason="waiting to be placed"
            if create_and_start
            else "created, not started: POST :resume to start it",
        )
        # a new task has no event-type rows to reconcile
        TaskEventType.objects.bulk_create(_event_type_rows(task, _event_ids(task)))
        free = free_replicas(candidate_services(task)) if create_and_start else []
        if create_and_start and not free:
            # nowhere to start it now: placement only writes rows (the reason,
            # a service to start once committed), so it shares this
            # transaction: one commit for the whole call instead of three
            place(task.task_id, task, free=[])
    if free:
        # placement calls an engine: after the commit, never inside it
        place(task.task_id, task, free=free)
    return AlgoTask.objects.get(pk=task.task_id)


def get_task(task_id: str, scope: str = "cap") -> AlgoTask:
    task = AlgoTask.objects.filter(pk=task_id, scope=scope).first()
    if task is None:
        raise NotFound(_("no task %(id)s") % {"id": task_id}, field="ID")
    return task


def search_tasks(
    *,
    scope: str = "cap",
    event_id: str = "",
    status: str = "",
    restart_policy: str = "",
    create_and_start: bool | None = None,
) -> QuerySet[AlgoTask]:
    queryset = AlgoTask.objects.filter(scope=scope)
    if status:
        queryset = queryset.filter(status=status)
    if restart_policy:
        queryset = queryset.filter(restart_policy=restart_policy)
    if create_and_start is not None:
        queryset = queryset.filter(create_and_start=create_and_start)
    if event_id:
        # a semi-join on the (event_id, scope, task) index: no duplicate rows to count
        queryset = queryset.filter(
            task_id__in=TaskEventType.objects.filter(event_id=event_id, scope=scope).values(
                "task_id"
            )
        )
    return queryset.order_by("-created_at", "task_id")


def count_search(
    queryset: QuerySet[AlgoTask],
    *,
    scope: str = "cap",
    event_id: str = "",
    status: str = "",
    restart_policy: str = "",
    create_and_start: bool | None = None,
) -> int:
    """TotalSize of a search_tasks() result. A search by EventID alone counts
    that EventID's rows of the event-type index (one per task, unique) from
    the index alone; joining them with the tasks to count costs a pass over
    every task of the scope."""
    if event_id and not status and not restart_policy and create_and_start is None:
        return TaskEventType.objects.filter(event_id=event_id, scope=scope).count()
    return queryset.count()


def update_task(
    task_id: str,
    *,
    restart_policy: str,
    task_info: dict[str, Any],
    service_id: str = "",
    scope: str = "cap",
) -> AlgoTask:
    """表38. A NEVER task may change only while PAUSED; an ALWAYS task takes
    new rules while it runs."""
    with transaction.atomic():
        task = AlgoTask.objects.select_for_update().filter(pk=task_id, scope=scope).first()
        if task is None:
            raise NotFound(_("no task %(id)s") % {"id": task_id}, field="ID")
        if task.restart_policy == RestartPolicy.NEVER and task.status != TaskStatus.PAUSED:
            raise Conflict(
                _(
                    "a NEVER task may be updated only while PAUSED; task %(id)s is %(status)s: "
                    "pause it first"
                )
                % {"id": task_id, "status": task.status}
            )
        requested = _check_service(service_id) if service_id else None
        stream_changed = task.stream_url != task_info["StreamOptions"]["VideoStreamOptions"]["Url"]
        service_changed = requested is not None and requested.pk != task.service_id
        name, version = _labels(task_info)
        task.restart_policy = restart_policy
        task.task_info = task_info
        task.algo_name, task.algo_version = name, version
        task.stream_url = task_info["StreamOptions"]["VideoStreamOptions"]["Url"]
        if requested is not None:
            task.requested_service = requested
        task.rule_version += 1
        task.save()
        _set_event_types(task)
    if task.status == TaskStatus.RUNNING and task.replica_id is not None:
        if service_changed:
            _release(task, TaskStatus.PENDING, "moving to the requested service")
            place(task.task_id)
        else:
            try:
                engine.call(
                    task.replica.engine_url,  # type: ignore[union-attr]
                    "PUT",
                    f"/AlgoTasks/{task.task_id}",
                    {"TaskInfo": streams.engine_task_info(task.task_info)},
                )
            except engine.EngineUnavailable as error:
                log.warning("task %s: rules not pushed to engine: %s", task_id, error)
                _release(task, TaskStatus.PENDING, f"re-placing after update: {error}")
                place(task.task_id)
        if stream_changed:
            log.info("task %s: stream changed to %s", task_id, task.stream_url)
    return AlgoTask.objects.get(pk=task_id)


def pause_task(task_id: str, scope: str = "cap") -> AlgoTask:
    """表41: stop analysing and free the stream; repeating it is harmless."""
    task = get_task(task_id, scope)
    if task.status == TaskStatus.FINISHED:
        raise Conflict(_("task %(id)s is FINISHED: there is nothing to pause") % {"id": task_id})
    AlgoTask.objects.filter(pk=task_id).update(desired_state=DesiredState.STOPPED)
    task.refresh_from_db()
    _release(task, TaskStatus.PAUSED, "paused by the platform")
    return task


def resume_task(task_id: str, scope: str = "cap") -> AlgoTask:
    """表40: start (or restart) the task; a RUNNING task is left alone."""
    task = get_task(task_id, scope)
    if task.status == TaskStatus.RUNNING and task.desired_state == DesiredState.RUNNING:
        return task
    with transaction.atomic():
        task = AlgoTask.objects.select_for_update().get(pk=task_id)
        task.desired_state = DesiredState.RUNNING
        task.status, task.reason = TaskStatus.PENDING, "waiting to be placed"
        task.finished_at = None
        task.save()
    place(task_id)
    return AlgoTask.objects.get(pk=task_id)


def delete_task(task_id: str, scope: str = "cap") -> None:
    """表39: stop and remove it; never touches other tasks. Deleting again
    succeeds; an ID that never existed is NotFound."""
    task = AlgoTask.objects.filter(pk=task_id, scope=scope).select_related("replica").first()
    if task is None:
        if AlgoTask.history.filter(task_id=task_id, history_type="-").exists():
            return
        raise NotFound(_("no task %(id)s") % {"id": task_id}, field="ID")
    _stop_on_engine(task)
    task.delete()


# --- scheduling -----------------------------------------------------------------


def _stop_on_engine(task: AlgoTask) -> None:
    if task.replica_id is None:
        return
    try:
        engine.call(task.replica.engine_url, "DELETE", f"/AlgoTasks/{task.task_id}")  # type: ignore[union-attr]
    except engine.EngineUnavailable as error:
        # the replica is gone or sick: nothing left to stop there
        log.info("task %s: engine stop skipped: %s", task.task_id, error)


def _release(task: AlgoTask, status: str, reason: str) -> None:
    _stop_on_engine(task)
    AlgoTask.objects.filter(pk=task.pk).update(
        status=status, reason=reason[:512], replica=None, quota=0, updated_at=timezone.now()
    )
    task.refresh_from_db()
    task.save()  # one history row for the transition


def _load(replica: Replica) -> int:
    return AlgoTask.objects.filter(replica=replica, status=TaskStatus.RUNNING).count()


def candidate_services(task: AlgoTask) -> QuerySet[AlgoService]:
    if task.requested_service_id:
        return AlgoService.objects.visible().filter(pk=task.requested_service_id)
    packages = AlgoFilePackage.objects.filter(
        name=task.algo_name, status__in=[PackageStatus.COMPLETE, PackageStatus.HAS_RUN]
    )
    if task.algo_version:
        packages = packages.filter(version=task.algo_version)
    return AlgoService.objects.visible().filter(package__in=packages, kind=ServiceKind.SERVICE)


def free_replicas(services: QuerySet[AlgoService]) -> list[tuple[Replica, int]]:
    """RUNNING replicas of these services with free stream capacity, most
    free first."""
    replicas = (
        Replica.objects.filter(service__in=services, state=ReplicaState.RUNNING)
        .select_related("service", "node")
        .annotate(load=Count("tasks", filter=Q(tasks__status=TaskStatus.RUNNING)))
    )
    free: list[tuple[Replica, int]] = [
        (replica, max(1, replica.service.stream_capacity) - replica.load)  # type: ignore[attr-defined]
        for replica in replicas
    ]
    free = [(r, n) for r, n in free if n > 0]
    free.sort(key=lambda item: (-item[1], item[0].pk))
    return free


def _start_service_for(task: AlgoTask) -> AlgoService | None:
    """表37 note: no fitting service runs, so start one for the task's package."""
    from compute.actions import ensure_local_node
    from services.actions import create_service

    packages = AlgoFilePackage.objects.filter(
        name=task.algo_name, status__in=[PackageStatus.COMPLETE, PackageStatus.HAS_RUN]
    )
    if task.algo_version:
        packages = packages.filter(version=task.algo_version)
    package = packages.order_by("-created_at").first()
    if package is None:
        return None
    node = ensure_local_node()
    try:
        return create_service(package_id=package.package_id, replicas=1, xpu_type=node.xpu_type)
    except (Invalid, Conflict) as error:
        AlgoTask.objects.filter(pk=task.pk).update(
            reason=f"cannot start a service for {package.package_id}: {error}"[:512]
        )
        return None


def place(
    task_id: str,
    task: AlgoTask | None = None,
    *,
    free: list[tuple[Replica, int]] | None = None,
) -> None:
    """Try to put a task that should run onto a replica with free capacity.
    It stays PENDING with a reason when none has; the reconciler tries again.
    create_task passes the task it just stored and the free replicas it
    found, to spare reading them again."""
    if task is None:
        task = (
            AlgoTask.objects.filter(pk=task_id, desired_state=DesiredState.RUNNING)
            .exclude(status__in=[TaskStatus.RUNNING, TaskStatus.FINISHED])
            .first()
        )
    if task is None:
        return
    services = candidate_services(task)
    fitting = list(services.select_related("package"))
    if not fitting:
        if task.requested_service_id:
            _set_pending(task, f"requested service {task.requested_service_id} no longer exists")
            return
        label = f"{task.algo_name} {task.algo_version}".strip()
        if not AlgoFilePackage.objects.filter(name=task.algo_name).exists():
            _set_pending(task, f"no algorithm package named {label}")
            return
        service = _start_service_for(task)
        if service is None:
            task.refresh_from_db()
            if not task.reason.startswith("cannot start"):
                _set_pending(task, f"no complete package of {label} to start a service from")
            return
        _set_pending(task, f"starting service {service.service_id} for {label}")
        services = candidate_services(task)
        fitting, free = list(services.select_related("package")), None
    for replica, _free in free_replicas(services) if free is None else free:
        if _start_on(task, replica):
            return
    # (no _start_on succeeded, so none refreshed these services' status)
    names = ", ".join(service.service_id for service in fitting[:3])
    running = any(
        service.status in (ServiceStatus.RUNNING, ServiceStatus.OVERLOAD) for service in fitting
    )
    _set_pending(
        task,
        f"waiting for capacity on service {names}"
        if running
        else f"waiting for service {names} to be RUNNING",
    )
    for service in fitting:
        refresh_overload(service)


def _set_pending(task: AlgoTask, reason: str) -> None:
    if (task.status, task.reason) != (TaskStatus.PENDING, reason):
        task.status, task.reason = TaskStatus.PENDING, reason[:512]
        # the row and its history row in one commit (no savepoint when nested)
        with transaction.atomic(savepoint=False):
            task.save(update_fields=["status", "reason", "updated_at"])


def _start_on(task: AlgoTask, replica: Replica) -> bool:
    try:
        engine.call(
            replica.engine_url,
            "POST",
            "/AlgoTasks",
            {"TaskID": task.task_id, "TaskInfo": streams.engine_task_info(task.task_info)},
        )
    except engine.EngineUnavailable as error:
        if "exists" in str(error) or "409" in str(error):
            pass  # it already runs there (a retried placement): adopt it
        else:
            _set_pending(task, f"engine {replica.name} refused the task: {error}")
            return False
    task.replica = replica
    task.service = replica.service
    task.status, task.reason = TaskStatus.RUNNING, ""
    task.quota = 1
    task.started_at = timezone.now()
    task.save()
    refresh_overload(replica.service)
    return True


def refresh_overload(service: AlgoService) -> None:
    """A service whose tasks exceed its stream capacity is OVERLOAD."""
    if service.status not in (ServiceStatus.RUNNING, ServiceStatus.OVERLOAD):
        return
    capacity = max(1, service.stream_capacity) * service.replicas
    running = AlgoTask.objects.filter(service=service, status=TaskStatus.RUNNING).count()
    package = service.package
    wants_this_algorithm = Q(requested_service__isnull=True, algo_name=package.name) & (
        Q(algo_version="") | Q(algo_version=package.version)
    )
    waiting = AlgoTask.objects.filter(
        Q(requested_service=service) | wants_this_algorithm,
        status=TaskStatus.PENDING,
        replica__isnull=True,
        desired_state=DesiredState.RUNNING,
    ).count()
    status = ServiceStatus.OVERLOAD if running + waiting > capacity else ServiceStatus.RUNNING
    if status != service.status:
        reason = f"{running + waiting} tasks for {capacity} streams" if waiting else ""
        AlgoService.objects.filter(pk=service.pk).update(status=status, status_reason=reason)


# --- observing -----------------------------------------------------------------


def observe(task: AlgoTask) -> None:
    """Compare one RUNNING task with what its engine says; apply the restart
    policy when the stream or the replica failed."""
    replica = task.replica
    if replica is None or replica.state != ReplicaState.RUNNING:
        _lost(task, "engine replica lost")
        return
    try:
        detail = engine.call(replica.engine_url, "GET", f"/AlgoTasks/{task.task_id}")
    except engine.EngineUnavailable as error:
        if "404" in str(error):
            _lost(task, "the engine no longer runs the task")
        else:
            _lost(task, f"engine replica lost: {error}")
        return
    engine_status = detail.get("Status", "")
    reason = streams.explain(task.stream_url, detail.get("Reason", ""))
    stats = detail.get("Stats", {})
    if engine_status == TaskStatus.FINISHED:
        _stop_on_engine(task)
        AlgoTask.objects.filter(pk=task.pk).update(
            status=TaskStatus.FINISHED,
            reason=reason or "the stream ended",
            replica=None,
            quota=0,
            stats=stats,
            finished_at=timezone.now(),
        )
        AlgoTask.objects.get(pk=task.pk).save()
        return
    if engine_status == TaskStatus.PENDING:
        # the engine is opening the stream (created, resumed, rules or Url
        # changed): not a failure, whatever its Reason ("connecting") says
        AlgoTask.objects.filter(pk=task.pk).update(stats=stats)
        return
    if engine_status == TaskStatus.ERROR or reason:
        if task.restart_policy == RestartPolicy.NEVER:
            _stop_on_engine(task)
            AlgoTask.objects.filter(pk=task.pk).update(
                status=TaskStatus.ERROR,
                reason=reason[:512] or "engine error",
                replica=None,
                quota=0,
                stats=stats,
                desired_state=DesiredState.STOPPED,
            )
            AlgoTask.objects.get(pk=task.pk).save()
            return
        # ALWAYS: the engine reconnects by itself; show why the task is not analysing
        AlgoTask.objects.filter(pk=task.pk).update(
            status=TaskStatus.PENDING, reason=f"{reason} (reconnecting)"[:512], stats=stats
        )
        return
    AlgoTask.objects.filter(pk=task.pk).update(stats=stats)


def observe_recovering(task: AlgoTask) -> None:
    """An ALWAYS task left PENDING on its replica while the engine reconnects."""
    replica = task.replica
    if replica is None:
        return
    try:
        detail = engine.call(replica.engine_url, "GET", f"/AlgoTasks/{task.task_id}")
    except engine.EngineUnavailable:
        _lost(task, "engine replica lost")
        return
    if detail.get("Status") == TaskStatus.RUNNING and not detail.get("Reason"):
        AlgoTask.objects.filter(pk=task.pk).update(
            status=TaskStatus.RUNNING,
            reason="",
            stats=detail.get("Stats", {}),
            restart_count=task.restart_count + 1,
        )
        AlgoTask.objects.get(pk=task.pk).save()
    elif detail.get("Status") == TaskStatus.FINISHED:
        task.status = TaskStatus.RUNNING
        observe(task)


def _lost(task: AlgoTask, reason: str) -> None:
    if task.restart_policy == RestartPolicy.ALWAYS:
        AlgoTask.objects.filter(pk=task.pk).update(restart_count=task.restart_count + 1)
        task.refresh_from_db()
        _release(task, TaskStatus.PENDING, f"{reason}; re-placing")
        place(task.task_id)
    else:
        AlgoTask.objects.filter(pk=task.pk).update(desired_state=DesiredState.STOPPED)
        task.refresh_from_db()
        _release(task, TaskStatus.ERROR, reason)


def enqueue_place(task_id: str) -> None:
    enqueue("tasks.jobs.place_task", task_id, name="place task")
