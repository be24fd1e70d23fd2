"""Recurring background work, registered with django-q2's scheduler."""

from __future__ import annotations

from django_q.models import Schedule

SCHEDULES = [
    # (function, minutes between runs)
    ("algorithms.jobs.reconcile_transfers", 1),
    ("facility.health.worker_heartbeat", 1),
    # a fallback beside `manage.py run_sampler` (10 s cadence), which skips
    # when a fresh sample exists
    ("compute.jobs.sample_local_node", 1),
    ("compute.jobs.downsample_and_prune", 60),
]


def ensure_schedules() -> None:
    for func, minutes in SCHEDULES:
        Schedule.objects.update_or_create(
            func=func,
            defaults={
                "name": func.rsplit(".", 1)[-1],
                "schedule_type": Schedule.MINUTES,
                "minutes": minutes,
                "repeats": -1,
            },
        )
