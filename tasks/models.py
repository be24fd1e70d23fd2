from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from facility.history import history
from services.models import AlgoService, Replica
from tasks.choices import DeliveryState, DesiredState, RestartPolicy, TaskStatus


def new_task_id() -> str:
    return uuid.uuid4().hex


class AlgoTask(models.Model):
    """An analysis task (表K.4): desired state apart from observed status,
    with a machine-readable reason whenever it is not RUNNING."""

    task_id = models.CharField("ID", max_length=128, primary_key=True, default=new_task_id)
    scope = models.CharField(max_length=3, default="cap", help_text="cap or cad (表8–15)")
    restart_policy = models.CharField(max_length=10, choices=RestartPolicy.choices)
    create_and_start = models.BooleanField(default=True)
    task_info = models.JSONField(
        help_text="TaskInfo as accepted (Labels, RulesParams, StreamOptions)"
    )
    algo_name = models.CharField("AlgoCaBinName", max_length=128, blank=True, db_index=True)
    algo_version = models.CharField(max_length=20, blank=True)
    stream_url = models.CharField(max_length=1024)
    requested_service = models.ForeignKey(
        AlgoService,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="AlgoServiceID of manual scheduling",
    )
    service = models.ForeignKey(
        AlgoService, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    replica = models.ForeignKey(
        Replica, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    desired_state = models.CharField(
        max_length=8, choices=DesiredState.choices, default=DesiredState.RUNNING
    )
    status = models.CharField(
        max_length=20, choices=TaskStatus.choices, default=TaskStatus.PENDING, db_index=True
    )
    reason = models.CharField(max_length=512, blank=True)
    quota = models.PositiveIntegerField(default=0, help_text="streams held")
    rule_version = models.PositiveIntegerField(default=1)
    restart_count = models.PositiveIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True, help_text="last engine statistics")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        verbose_name = "analysis task"
        ordering = ["-created_at", "task_id"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="task_status_created"),
            # 表42 search pages and counts by scope + Status from the index alone
            models.Index(
                fields=["scope", "status", "-created_at", "task_id"], name="task_scope_status"
            ),
            models.Index(fields=["restart_policy", "status"], name="task_policy_status"),
            models.Index(fields=["desired_state", "status"], name="task_desired_status"),
        ]

    def __str__(self) -> str:
        return self.task_id

    @property
    def rules(self) -> list[dict]:
        return list(self.task_info.get("RulesParams", []))

    def receive_urls(self, event_id: str = "") -> list[str]:
        urls: list[str] = []
        for rule in self.rules:
            if event_id and rule.get("EventID") and rule.get("EventID") != event_id:
                continue
            for url in rule.get("ResultReceiveUrl", []):
                if url not in urls:
                    urls.append(url)
        return urls


class TaskEventType(models.Model):
    """The EventIDs of a task's rules, for 表42's EventID filter."""

    task = models.ForeignKey(AlgoTask, on_delete=models.CASCADE, related_name="event_types")
    event_id = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "event_id"], name="task_event_type_unique")
        ]
        # 表42's EventID filter: the task ids of one EventID from the index alone
        indexes = [models.Index(fields=["event_id", "task"], name="task_event_type_by_event")]

    def __str__(self) -> str:
        return self.event_id


class TaskEvent(models.Model):
    """An analysis result from an engine: the outbox row that deliveries
    work from. Kept after its task is deleted, for the audit trail."""

    event_key = models.CharField(max_length=64, unique=True)
    task_id = models.CharField(max_length=128, db_index=True)
    event_id = models.CharField(max_length=64, blank=True, db_index=True)
    area_id = models.CharField(max_length=64, blank=True)
    event_time = models.DateTimeField(db_index=True)
    engine_id = models.CharField(max_length=63, blank=True)
    service_id = models.CharField(max_length=128, blank=True)
    package_id = models.CharField(max_length=40, blank=True)
    document = models.JSONField(help_text="the event as delivered, without the snapshot")
    snapshot_path = models.CharField(max_length=1024, blank=True)
    snapshot_bytes = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_id} of {self.task_id} at {self.event_time:%Y-%m-%d %H:%M:%S}"


class Delivery(models.Model):
    """One event to one receiver: retried with back-off until delivered, or
    dead-lettered; replayable."""

    event = models.ForeignKey(TaskEvent, on_delete=models.CASCADE, related_name="deliveries")
    target = models.CharField(max_length=1024)
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now, db_index=True)
    last_status = models.PositiveIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=512, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "deliveries"
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.event.event_key} → {self.target}"


class ViewLibrary(models.Model):
    """A GA/T 1400 view library (视图库) events are delivered to, with its
    registration state (tasks.sinks.gat1400 keeps it; docs/gat1400.md)."""

    key = models.CharField(
        max_length=300, unique=True, help_text="'settings' or user@host/DeviceID"
    )
    target = models.CharField(max_length=1024, help_text="the delivery target it serves")
    base_url = models.CharField(max_length=1024)
    device_id = models.CharField("DeviceID", max_length=20)
    registered = models.BooleanField(default=False)
    registered_at = models.DateTimeField(null=True, blank=True)
    keepalive_at = models.DateTimeField(null=True, blank=True, help_text="last keepalive answered")
    last_error = models.CharField(max_length=512, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "GA/T 1400 view library"
        verbose_name_plural = "GA/T 1400 view libraries"

    def __str__(self) -> str:
        return self.key
