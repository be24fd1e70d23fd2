"""Audit history for the domain models (django-simple-history), stamped with
the request that caused each change; changes made by workers carry no user
and say so."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.dispatch import receiver
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record


class RequestStampedHistory(models.Model):
    history_request_id = models.CharField(
        "request ID", max_length=128, blank=True, default="", db_index=True
    )

    class Meta:
        abstract = True


def history() -> HistoricalRecords:
    """The HistoricalRecords every audited model uses."""
    return HistoricalRecords(bases=[RequestStampedHistory], cascade_delete_history=False)


@receiver(pre_create_historical_record)
def _stamp_request(sender: Any, **kwargs: Any) -> None:
    historical = kwargs["history_instance"]
    if not hasattr(historical, "history_request_id"):
        return
    request = getattr(HistoricalRecords.context, "request", None)
    rid = getattr(request, "request_id", "") if request is not None else ""
    historical.history_request_id = rid or ""
    if request is None and not historical.history_change_reason:
        historical.history_change_reason = "background worker"
