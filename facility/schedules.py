"""Recurring background work, registered with django-q2's scheduler."""

from __future__ import annotations

from django_q.models import Schedule

SCHEDULES = [
    # (function, minutes between runs)
    ("algorithms.jobs.reconcile_transfers", 1),
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
