"""Hand work to the django-q2 workers once the current transaction commits,
so a worker never sees a row that is not yet there.

FACILITY_QUEUE_MODE: `q2` (workers, the default), `sync` (run inline after
commit: tests and one-off scripts), `manual` (record nothing, run nothing:
tests that drive jobs themselves)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


def enqueue(job: str, *args: Any, name: str | None = None) -> None:
    mode = settings.FACILITY_QUEUE_MODE

    def send() -> None:
        if mode == "manual":
            return
        if mode == "sync":
            import_string(job)(*args)
            return
        from django_q.tasks import async_task

        async_task(job, *args, task_name=name or job.rsplit(".", 1)[-1])

    transaction.on_commit(send)
