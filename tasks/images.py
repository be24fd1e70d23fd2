"""GA/T 1400 image input: pictures a view library pushes to the facility are
stored, analysed one by one by a replica whose algorithm declares image
capacity (Analyze_Quota), and their events delivered like a task's
(docs/gat1400.md "Image input").

An image is acknowledged only once its file is on disk and its ImageJob row
committed. Analysis claims one of the replica's Analyze_Quota image slots
(a partial unique index on (replica, slot) of running jobs, so two workers
can never overfill a replica), calls the engine's `POST /Images:analyze`
(docs/engine-interface.md) and, in one transaction, stores the events, their
deliveries and the job's end. A job that finds no free slot waits; a failed
engine call is retried with the deliveries' back-off up to
IMAGE_MAX_ATTEMPTS; a worker that died mid-call leaves a claim that expires."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from algorithms.choices import PackageStatus
from algorithms.models import AlgoFilePackage
from facility.errors import Invalid, NotFound
from facility.queue import enqueue
from services import engine
from services.actions import xpu_requirement
from services.choices import ReplicaState, ServiceKind
from services.models import AlgoService, Replica
from tasks.choices import ImageJobState
from tasks.events import send_soon, snapshot_dir
from tasks.models import Delivery, ImageIntake, ImageJob, TaskEvent

log = logging.getLogger(__name__)

FORMATS = {b"\xff\xd8": "jpg", b"\x89P": "png"}
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")
CLAIM_MARGIN_S = 30
WAIT_FOR_SLOT_S = 1.0


def image_dir() -> Path:
    return Path(settings.DATA_DIR) / "images"


# --- intake ------------------------------------------------------------------


def intake_for(device_id: str) -> ImageIntake | None:
    """The enabled intake that lists this DeviceID, else the one that lists none."""
    fallback = None
    for intake in ImageIntake.objects.filter(enabled=True).order_by("name"):
        devices = intake.device_list()
        if device_id and device_id in devices:
            return intake
        if not devices and fallback is None:
            fallback = intake
    return fallback


def _shot_at(shot_time: str) -> datetime:
    """GA/T 1400 ShotTime (YYYYMMDDhhmmss, local time), else now."""
    try:
        naive = datetime.strptime(shot_time, "%Y%m%d%H%M%S")
    except (TypeError, ValueError):
        return timezone.now()
    return timezone.make_aware(naive, timezone.get_current_timezone())


def _write(path: Path, data: bytes) -> None:
    """The file is complete and on disk before the image is acknowledged."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    with part.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    part.replace(path)


def store_image(
    *, image_id: str, device_id: str, info: dict[str, Any], data: bytes, source: str
) -> tuple[ImageJob, bool]:
    """Keep one pushed image and queue its analysis; returns (job, created).
    The same ImageID again is acknowledged without a second analysis."""
    existing = ImageJob.objects.filter(image_id=image_id).first()
    if existing is not None:
        return existing, False
    kind = FORMATS.get(data[:2])
    if kind is None:
        raise Invalid(_("is not a JPEG or PNG image"), field="Data")
    intake = intake_for(device_id)
    if intake is None:
        raise NotFound(
            _("no enabled image intake takes DeviceID %(device)s") % {"device": device_id or "-"},
            field="ImageInfo.DeviceID",
        )
    shot_at = _shot_at(str(info.get("ShotTime", "")))
    path = image_dir() / shot_at.strftime("%Y%m%d") / f"{SAFE_NAME.sub('_', image_id)}.{kind}"
    _write(path, data)
    try:
        with transaction.atomic():
            job = ImageJob.objects.create(
                image_id=image_id,
                device_id=device_id[:64],
                intake=intake,
                info=info,
                source=source[:24],
                path=str(path),
                size=len(data),
                shot_at=shot_at,
                reason=_("waiting for analysis"),
            )
    except IntegrityError:  # the same ImageID pushed twice at once: one row, one file
        return ImageJob.objects.get(image_id=image_id), False
    enqueue("tasks.jobs.analyze_image", job.pk, name="analyse image")
    return job, True


# --- where images can go -------------------------------------------------------


def analyze_quota(service: AlgoService) -> int:
    """Capacities.Analyze_Quota of the package for the service's XpuType."""
    capacities = xpu_requirement(service.package, service.xpu_type).get("Capacities") or {}
    try:
        return max(0, int(capacities.get("Analyze_Quota", 0) or 0))
    except (TypeError, ValueError):
        return 0


def candidate_services(intake: ImageIntake) -> list[AlgoService]:
    """The intake's services whose algorithm declares image capacity."""
    services = AlgoService.objects.visible().filter(kind=ServiceKind.SERVICE)
    if intake.service_id:
        services = services.filter(pk=intake.service_id)
    else:
        packages = AlgoFilePackage.objects.filter(
            name=intake.algo_name, status__in=[PackageStatus.COMPLETE, PackageStatus.HAS_RUN]
        )
        if intake.algo_version:
            packages = packages.filter(version=intake.algo_version)
        services = services.filter(package__in=packages)
    return [s for s in services.select_related("package") if analyze_quota(s) > 0]


@dataclass(frozen=True)
class Outcome:
    """What one analyze_image call did: done, failed, retry (engine failed),
    busy (no free slot or no replica: waits), skipped (not due / taken)."""

    kind: str
    detail: str = ""


def _wait(job: ImageJob, reason: str, seconds: float) -> None:
    ImageJob.objects.filter(pk=job.pk, state=ImageJobState.PENDING).update(
        reason=reason[:512], next_attempt_at=timezone.now() + timedelta(seconds=seconds)
    )


def _claim(job: ImageJob, services: list[AlgoService]) -> tuple[Replica, int] | bool | None:
    """A free image slot for the job: (replica, slot); None when every slot
    is taken; False when another worker took the job."""
    quotas = {s.pk: analyze_quota(s) for s in services}
    replicas = list(
        Replica.objects.filter(service__in=services, state=ReplicaState.RUNNING)
        .select_related("service", "node")
        .annotate(busy=Count("image_jobs", filter=Q(image_jobs__state=ImageJobState.RUNNING)))
    )
    replicas.sort(key=lambda r: (r.busy - quotas[r.service_id], r.pk))  # type: ignore[attr-defined]
    hold = settings.IMAGE_ANALYZE_TIMEOUT_S + CLAIM_MARGIN_S
    for replica in replicas:
        for slot in range(quotas[replica.service_id]):
            try:
                with transaction.atomic():
                    claimed = ImageJob.objects.filter(
                        pk=job.pk, state=ImageJobState.PENDING
                    ).update(
                        state=ImageJobState.RUNNING,
                        replica=replica,
                        slot=slot,
                        claimed_until=timezone.now() + timedelta(seconds=hold),
                        reason=_("analysing on %(replica)s") % {"replica": replica.name},
                    )
            except IntegrityError:
                continue  # that slot is in use
            if not claimed:
                return False
            return replica, slot
    return None


def analyze_image(job_id: int) -> Outcome:
    """Analyse one pending image if it is due and a slot is free."""
    job = ImageJob.objects.select_related("intake").filter(pk=job_id).first()
    if job is None or job.state != ImageJobState.PENDING or job.next_attempt_at > timezone.now():
        return Outcome("skipped")
    intake = job.intake
    label = (
        f"service {intake.service_id}"
        if intake.service_id
        else f"{intake.algo_name} {intake.algo_version}".strip()
    )
    services = candidate_services(intake)
    if not services:
        reason = _("no algorithm service of %(label)s declares image capacity (Analyze_Quota)") % {
            "label": label or "-"
        }
        _wait(job, reason, settings.RECONCILE_INTERVAL_S)
        return Outcome("busy", reason)
    claim = _claim(job, services)
    if isinstance(claim, bool):  # another worker took the job
        return Outcome("skipped")
    if claim is None:
        names = ", ".join(s.service_id for s in services[:3])
        reason = _("waiting for a free image slot on %(services)s") % {"services": names}
        _wait(job, reason, WAIT_FOR_SLOT_S)
        return Outcome("busy", reason)
    replica, _slot = claim
    return _run(job, intake, replica)


def _request(job: ImageJob, intake: ImageIntake) -> dict[str, Any]:
    data = Path(job.path).read_bytes()
    return {
        "ImageID": job.image_id,
        "Data": base64.b64encode(data).decode(),
        "EventTime": round(job.shot_at.timestamp() * 1000),
        "TaskInfo": {"RulesParams": intake.rules if isinstance(intake.rules, list) else []},
    }


def _run(job: ImageJob, intake: ImageIntake, replica: Replica) -> Outcome:
    try:
        body = _request(job, intake)
    except OSError as error:  # the stored file is gone: nothing to retry with
        _finish(job, ImageJobState.FAILED, _("stored image unreadable: %(e)s") % {"e": error})
        return Outcome("failed", str(error))
    try:
        result = engine.call(
            replica.engine_url,
            "POST",
            "/Images:analyze",
            body,
            timeout_s=settings.IMAGE_ANALYZE_TIMEOUT_S,
        )
    except engine.EngineUnavailable as error:
        return _engine_failed(job, replica, str(error))
    if not isinstance(result, dict):
        return _engine_failed(job, replica, "engine answered without Data")
    created = _store_results(job, intake, replica, result)
    for event_pk in created:
        send_soon(event_pk)
    return Outcome("done", f"{len(created)} event(s)")


def _engine_failed(job: ImageJob, replica: Replica, error: str) -> Outcome:
    message = f"{replica.name}: {error}"[:512]
    if "HTTP 400" in error or "HTTP 413" in error:
        # the engine refused this image or these rules: a retry gets the same answer
        _finish(job, ImageJobState.FAILED, message)
        return Outcome("failed", message)
    if "HTTP 503" in error:
        # at capacity (someone else uses it) or shutting down: wait, not an attempt
        _release(job, message, attempts=job.attempts, wait_s=WAIT_FOR_SLOT_S)
        return Outcome("busy", message)
    from tasks.jobs import backoff_s

    attempts = job.attempts + 1
    if attempts >= settings.IMAGE_MAX_ATTEMPTS:
        ImageJob.objects.filter(pk=job.pk).update(attempts=attempts)
        _finish(job, ImageJobState.FAILED, message)
        return Outcome("failed", message)
    _release(job, message, attempts=attempts, wait_s=backoff_s(attempts))
    return Outcome("retry", message)


def _release(job: ImageJob, reason: str, *, attempts: int, wait_s: float) -> None:
    ImageJob.objects.filter(pk=job.pk, state=ImageJobState.RUNNING).update(
        state=ImageJobState.PENDING,
        slot=None,
        claimed_until=None,
        attempts=attempts,
        reason=reason[:512],
        next_attempt_at=timezone.now() + timedelta(seconds=wait_s),
    )


def _finish(job: ImageJob, state: str, reason: str, **fields: Any) -> None:
    ImageJob.objects.filter(pk=job.pk).update(
        state=state,
        slot=None,
        claimed_until=None,
        reason=reason[:512],
        finished_at=timezone.now(),
        **fields,
    )


def event_key(job: ImageJob, event: dict[str, Any]) -> str:
    """The same for an event found again when a job is re-run: no duplicates."""
    seed = f"{job.image_id}|{event.get('RuleIndex')}|{event.get('EventID')}|{event.get('AreaID')}"
    return "img-" + hashlib.sha256(seed.encode()).hexdigest()[:40]


def _store_results(
    job: ImageJob, intake: ImageIntake, replica: Replica, result: dict[str, Any]
) -> list[int]:
    """The events of one analysed image, their deliveries and the job's end,
    all or nothing; returns the new events' primary keys."""
    prepared: list[tuple[str, dict[str, Any], bytes]] = []
    for raw in result.get("Events") or []:
        if not isinstance(raw, dict):
            continue
        document = {k: v for k, v in raw.items() if k != "Snapshot"}
        key = event_key(job, raw)
        document.update(
            EventKey=key,
            TaskID=intake.task_id,
            ImageID=job.image_id,
            SourceDeviceID=job.device_id,
            AlgoServiceID=replica.service_id,
            AlgoFilePackageID=replica.service.package_id,
        )
        if not isinstance(document.get("EventTime"), int):
            document["EventTime"] = round(job.shot_at.timestamp() * 1000)
        snapshot = raw.get("Snapshot") or ""
        try:
            data = base64.b64decode(snapshot, validate=True) if snapshot else b""
        except ValueError:
            data = b""
        prepared.append((key, document, data))
    paths: dict[str, str] = {}
    for key, _document, data in prepared:
        if data:
            folder = snapshot_dir() / job.shot_at.strftime("%Y%m%d")
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{key}.jpg"
            target.write_bytes(data)
            paths[key] = str(target)
    created: list[int] = []
    objects = result.get("Objects")
    with transaction.atomic():
        for key, document, data in prepared:
            if TaskEvent.objects.filter(event_key=key).exists():
                continue  # stored by an earlier run of this job
            when = datetime.fromtimestamp(document["EventTime"] / 1000, tz=UTC)
            event = TaskEvent.objects.create(
                event_key=key,
                task_id=intake.task_id,
                event_id=str(document.get("EventID", ""))[:64],
                area_id=str(document.get("AreaID") if document.get("AreaID") is not None else "")[
                    :64
                ],
                event_time=when,
                engine_id=str(document.get("EngineID", ""))[:63],
                service_id=replica.service_id[:128],
                package_id=replica.service.package_id[:40],
                document=document,
                snapshot_path=paths.get(key, ""),
                snapshot_bytes=len(data),
            )
            targets = intake.receive_urls(event.event_id)
            if settings.GAT1400_URL:  # as for tasks: the view library of the settings too
                targets = [*targets, "viid:settings"]
            Delivery.objects.bulk_create([Delivery(event=event, target=t) for t in targets])
            if targets:
                created.append(event.pk)
        _finish(
            job,
            ImageJobState.DONE,
            _("%(events)d event(s), %(objects)d object(s)")
            % {
                "events": len(prepared),
                "objects": len(objects) if isinstance(objects, list) else 0,
            },
            objects_found=len(objects) if isinstance(objects, list) else 0,
            events=len(prepared),
        )
    return created


def analyze_due(limit: int = 100) -> dict[str, int]:
    """One pass of the image loop: expired claims back to pending, then every
    due image, oldest first, until none can be placed."""
    now = timezone.now()
    expired = ImageJob.objects.filter(state=ImageJobState.RUNNING, claimed_until__lt=now).update(
        state=ImageJobState.PENDING,
        slot=None,
        claimed_until=None,
        reason=_("the analysis was interrupted; retrying"),
    )
    counts = {"expired": expired, "done": 0, "failed": 0, "retry": 0, "busy": 0, "skipped": 0}
    due = ImageJob.objects.filter(state=ImageJobState.PENDING, next_attempt_at__lte=now).order_by(
        "next_attempt_at", "id"
    )
    waiting_intakes: set[int] = set()
    for job_id, intake_id in due.values_list("id", "intake_id")[:limit]:
        if intake_id in waiting_intakes:
            continue  # its algorithm has no free slot this pass
        outcome = analyze_image(job_id)
        counts[outcome.kind] += 1
        if outcome.kind == "busy":
            waiting_intakes.add(intake_id)
    return counts


def retry(job_ids: list[int]) -> int:
    """Analyse failed (or waiting) images again now, from the admin."""
    return ImageJob.objects.filter(
        pk__in=job_ids, state__in=[ImageJobState.FAILED, ImageJobState.PENDING]
    ).update(
        state=ImageJobState.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        finished_at=None,
        reason=_("retry requested"),
    )
