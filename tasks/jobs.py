"""Background entry points for tasks: the reconcile pass (observe running
tasks, place waiting ones) and result delivery. Safe to run twice: a
delivery is claimed with a compare-and-swap before it is sent."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from tasks import actions, images
from tasks.choices import DeliveryState, DesiredState, TaskStatus
from tasks.events import delivery_document
from tasks.models import AlgoTask, Delivery
from tasks.sinks import sink_for

log = logging.getLogger(__name__)

CLAIM_S = 60


def place_task(task_id: str) -> None:
    actions.place(task_id)


def reconcile_tasks() -> dict[str, int]:
    counts = {"observed": 0, "placed": 0}
    related = ("replica", "replica__node", "replica__service", "service")
    for task in AlgoTask.objects.filter(status=TaskStatus.RUNNING).select_related(*related):
        actions.observe(task)
        counts["observed"] += 1
    for task in AlgoTask.objects.filter(
        status=TaskStatus.PENDING, replica__isnull=False
    ).select_related(*related):
        actions.observe_recovering(task)
    waiting = AlgoTask.objects.filter(
        status=TaskStatus.PENDING, replica__isnull=True, desired_state=DesiredState.RUNNING
    ).order_by("created_at")
    for task_id in waiting.values_list("task_id", flat=True)[:500]:
        actions.place(task_id)
        counts["placed"] += 1
    return counts


def backoff_s(attempts: int) -> float:
    return float(
        min(settings.RESULT_BACKOFF_MAX_S, settings.RESULT_BACKOFF_BASE_S * 2 ** (attempts - 1))
    )


def deliver(delivery_id: int) -> bool:
    """Send one delivery if it is due and nobody else is sending it."""
    now = timezone.now()
    claimed = Delivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        pk=delivery_id,
        state=DeliveryState.PENDING,
        next_attempt_at__lte=now,
    ).update(claimed_until=now + timedelta(seconds=CLAIM_S))
    if not claimed:
        return False
    delivery = Delivery.objects.select_related("event").get(pk=delivery_id)
    result = sink_for(delivery.target).send(
        delivery.target, delivery_document(delivery.event), delivery.event.event_key
    )
    delivery.attempts += 1
    delivery.last_status = result.status
    delivery.claimed_until = None
    if result.ok:
        delivery.state = DeliveryState.DELIVERED
        delivery.delivered_at = timezone.now()
        delivery.last_error = ""
    else:
        delivery.last_error = result.error[:512]
        if delivery.attempts >= settings.RESULT_MAX_ATTEMPTS:
            delivery.state = DeliveryState.DEAD
        else:
            delivery.next_attempt_at = timezone.now() + timedelta(
                seconds=backoff_s(delivery.attempts)
            )
    delivery.save()
    return result.ok


def deliver_due(limit: int = 200) -> int:
    """One pass of the delivery loop: every due delivery, oldest first."""
    now = timezone.now()
    due = Delivery.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now),
        state=DeliveryState.PENDING,
        next_attempt_at__lte=now,
    ).order_by("next_attempt_at", "id")
    sent = 0
    # a receiver in back-off is not tried for its other events either
    failed_targets = set(
        Delivery.objects.filter(
            state=DeliveryState.PENDING, attempts__gt=0, next_attempt_at__gt=now
        ).values_list("target", flat=True)
    )
    for delivery_id, target in due.values_list("id", "target")[:limit]:
        if target in failed_targets:
            continue  # a receiver that just failed waits for its back-off, not per event
        if deliver(delivery_id):
            sent += 1
        else:
            failed_targets.add(target)
    return sent


def analyze_image(job_id: int) -> None:
    """Analyse one input image (tasks/images.py); queued when it is received."""
    images.analyze_image(job_id)


def analyze_due_images() -> dict[str, int]:
    """The image loop: retries, images that waited for a free slot, expired claims."""
    return images.analyze_due()
