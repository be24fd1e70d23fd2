"""Results from engines: verified, stored (with the snapshot on disk) and
queued for delivery to every ResultReceiveUrl (and configured sinks).
docs/events.md describes the event document."""

from __future__ import annotations

import base64
import binascii
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from facility.errors import Invalid
from tasks.models import AlgoTask, Delivery, TaskEvent

log = logging.getLogger(__name__)

MAX_SNAPSHOT_BYTES = 8 * 1024 * 1024


def snapshot_dir() -> Path:
    return Path(settings.DATA_DIR) / "snapshots"


def _event_time(value: Any) -> datetime:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Invalid(_("must be Unix milliseconds"), field="EventTime")
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def accept_event(document: dict[str, Any]) -> tuple[TaskEvent, bool]:
    """Store one engine event; returns (event, created). A repeated EventKey
    is acknowledged and ignored (engines retry)."""
    key = document.get("EventKey")
    if not isinstance(key, str) or not 8 <= len(key) <= 64:
        raise Invalid(_("must be a string of 8–64 characters"), field="EventKey")
    existing = TaskEvent.objects.filter(event_key=key).first()
    if existing is not None:
        return existing, False
    task_id = document.get("TaskID")
    if not isinstance(task_id, str) or not task_id:
        raise Invalid(_("is required"), field="TaskID")
    when = _event_time(document.get("EventTime"))
    snapshot = document.get("Snapshot") or ""
    data = b""
    if snapshot:
        try:
            data = base64.b64decode(snapshot, validate=True)
        except (binascii.Error, ValueError):
            raise Invalid(_("must be base64"), field="Snapshot") from None
        if len(data) > MAX_SNAPSHOT_BYTES:
            raise Invalid(
                _("larger than %(max)d bytes") % {"max": MAX_SNAPSHOT_BYTES}, field="Snapshot"
            )
    task = AlgoTask.objects.filter(pk=task_id).select_related("service").first()
    body = {k: v for k, v in document.items() if k != "Snapshot"}
    if task is not None and task.service_id:
        body.setdefault("AlgoServiceID", task.service_id)
        body.setdefault("AlgoFilePackageID", task.service.package_id)  # type: ignore[union-attr]
    path = ""
    if data:
        folder = snapshot_dir() / when.strftime("%Y%m%d")
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{key}.jpg"
        target.write_bytes(data)
        path = str(target)
    try:
        with transaction.atomic():
            event = TaskEvent.objects.create(
                event_key=key,
                task_id=task_id,
                event_id=str(document.get("EventID", ""))[:64],
                area_id=str(document.get("AreaID", ""))[:64],
                event_time=when,
                engine_id=str(document.get("EngineID", ""))[:63],
                service_id=body.get("AlgoServiceID", "")[:128],
                package_id=body.get("AlgoFilePackageID", "")[:40],
                document=body,
                snapshot_path=path,
                snapshot_bytes=len(data),
            )
            targets = task.receive_urls(event.event_id) if task is not None else []
            # GA/T 1400: with a view library in the settings, every task's events go there too
            # (tasks/sinks/gat1400.py, docs/gat1400.md)
            if task is not None and settings.GAT1400_URL:
                targets = [*targets, "viid:settings"]
            Delivery.objects.bulk_create([Delivery(event=event, target=url) for url in targets])
    except IntegrityError:
        return TaskEvent.objects.get(event_key=key), False
    if task is None:
        log.warning("event %s for unknown task %s kept without delivery", key, task_id)
    elif targets:
        transaction.on_commit(lambda: send_soon(event.pk))
    return event, True


_sender: ThreadPoolExecutor | None = None
_sender_lock = threading.Lock()


def send_soon(event_pk: int) -> None:
    """First attempt of a new event's deliveries right after intake, off the
    engine's request (the delivery loop would otherwise pick it up on its next
    pass, up to DELIVERY_INTERVAL_S later). A receiver in back-off is left to
    the loop; the claim in jobs.deliver keeps the two from sending twice.
    FACILITY_RESULT_SEND_ON_INTAKE=false (settings.RESULT_SEND_ON_INTAKE) turns
    it off."""
    global _sender
    if not getattr(settings, "RESULT_SEND_ON_INTAKE", True):
        return
    with _sender_lock:
        if _sender is None:
            _sender = ThreadPoolExecutor(max_workers=4, thread_name_prefix="result-send")
    _sender.submit(_send_new, event_pk)


def _send_new(event_pk: int) -> None:
    from django.db import close_old_connections, connection

    from tasks import jobs

    try:
        close_old_connections()
        now = timezone.now()
        resting = set(
            Delivery.objects.filter(
                state="pending", attempts__gt=0, next_attempt_at__gt=now
            ).values_list("target", flat=True)
        )
        for delivery_id, target in Delivery.objects.filter(
            event_id=event_pk, state="pending", attempts=0
        ).values_list("id", "target"):
            if target not in resting:
                jobs.deliver(delivery_id)
    except Exception:  # the delivery loop retries whatever this missed
        log.exception("immediate delivery of event %s failed", event_pk)
    finally:
        connection.close()


def delivery_document(event: TaskEvent) -> dict[str, Any]:
    document = dict(event.document)
    if event.snapshot_path and Path(event.snapshot_path).exists():
        document["Snapshot"] = base64.b64encode(Path(event.snapshot_path).read_bytes()).decode()
        document.setdefault("SnapshotFormat", "jpeg")
    return document


def replay(delivery_ids: list[int] | None = None, event_key: str = "") -> int:
    """Send dead (or any) deliveries again, from the admin or the API."""
    queryset = Delivery.objects.all()
    if delivery_ids is not None:
        queryset = queryset.filter(pk__in=delivery_ids)
    if event_key:
        queryset = queryset.filter(event__event_key=event_key)
    return queryset.update(
        state="pending", next_attempt_at=timezone.now(), claimed_until=None, last_error=""
    )
