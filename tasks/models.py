from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from facility.history import history
from services.models import AlgoService, Replica
from tasks.choices import DeliveryState, DesiredState, ImageJobState, RestartPolicy, TaskStatus


def new_task_id() -> str:
    return uuid.uuid4().hex


class AlgoTask(models.Model):
    """An analysis task (表K.4): desired state apart from observed status,
    with a machine-readable reason whenever it is not RUNNING."""

    task_id = models.CharField(_("ID"), max_length=128, primary_key=True, default=new_task_id)
    scope = models.CharField(
        max_length=3, default="cap", help_text=_("cap or cad (表8–15)"), verbose_name=_("scope")
    )
    restart_policy = models.CharField(
        max_length=10, choices=RestartPolicy.choices, verbose_name=_("restart policy")
    )
    create_and_start = models.BooleanField(default=True, verbose_name=_("create and start"))
    task_info = models.JSONField(
        help_text=_("TaskInfo as accepted (Labels, RulesParams, StreamOptions)"),
        verbose_name=_("task info"),
    )
    algo_name = models.CharField(_("AlgoCaBinName"), max_length=128, blank=True, db_index=True)
    algo_version = models.CharField(max_length=20, blank=True, verbose_name=_("algo version"))
    stream_url = models.CharField(max_length=1024, verbose_name=_("stream url"))
    requested_service = models.ForeignKey(
        AlgoService,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("AlgoServiceID of manual scheduling"),
        verbose_name=_("requested service"),
    )
    service = models.ForeignKey(
        AlgoService,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
        verbose_name=_("service"),
    )
    replica = models.ForeignKey(
        Replica,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="tasks",
        verbose_name=_("replica"),
    )
    desired_state = models.CharField(
        max_length=8,
        choices=DesiredState.choices,
        default=DesiredState.RUNNING,
        verbose_name=_("desired state"),
    )
    status = models.CharField(
        max_length=20,
        choices=TaskStatus.choices,
        default=TaskStatus.PENDING,
        db_index=True,
        verbose_name=_("status"),
    )
    reason = models.CharField(max_length=512, blank=True, verbose_name=_("reason"))
    quota = models.PositiveIntegerField(
        default=0, help_text=_("streams held"), verbose_name=_("quota")
    )
    rule_version = models.PositiveIntegerField(default=1, verbose_name=_("rule version"))
    restart_count = models.PositiveIntegerField(default=0, verbose_name=_("restart count"))
    stats = models.JSONField(
        default=dict, blank=True, help_text=_("last engine statistics"), verbose_name=_("stats")
    )
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))
    created_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = history()

    class Meta:
        verbose_name = _("analysis task")
        ordering = ["-created_at", "task_id"]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="task_status_created"),
            # 表42 search pages and counts by scope + Status from the index alone
            models.Index(
                fields=["scope", "status", "-created_at", "task_id"], name="task_scope_status"
            ),
            # 表42 counts by RestartPolicy (and Status, CreateAndStartTask) from the
            # index alone: a count that visits the table reads a page per task
            models.Index(
                fields=["restart_policy", "status", "scope", "create_and_start"],
                name="task_policy_status_scope",
            ),
            models.Index(fields=["desired_state", "status"], name="task_desired_status"),
        ]
        verbose_name_plural = _("analysis tasks")

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

    task = models.ForeignKey(
        AlgoTask, on_delete=models.CASCADE, related_name="event_types", verbose_name=_("task")
    )
    event_id = models.CharField(max_length=64, verbose_name=_("event id"))
    # the task's scope (never changes): an EventID search counts its tasks
    # from the index below alone, without joining 100 000 tasks
    scope = models.CharField(max_length=3, default="cap", verbose_name=_("scope"))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["task", "event_id"], name="task_event_type_unique")
        ]
        # 表42's EventID filter: the task ids (and count) of one EventID in a
        # scope from the index alone
        indexes = [
            models.Index(fields=["event_id", "scope", "task"], name="task_event_type_by_scope")
        ]
        verbose_name_plural = _("task event types")
        verbose_name = _("task event type")

    def __str__(self) -> str:
        return self.event_id


class TaskEvent(models.Model):
    """An analysis result from an engine: the outbox row that deliveries
    work from. Kept after its task is deleted, for the audit trail."""

    event_key = models.CharField(max_length=64, unique=True, verbose_name=_("event key"))
    task_id = models.CharField(max_length=128, db_index=True, verbose_name=_("task id"))
    event_id = models.CharField(
        max_length=64, blank=True, db_index=True, verbose_name=_("event id")
    )
    area_id = models.CharField(max_length=64, blank=True, verbose_name=_("area id"))
    event_time = models.DateTimeField(db_index=True, verbose_name=_("event time"))
    engine_id = models.CharField(max_length=63, blank=True, verbose_name=_("engine id"))
    service_id = models.CharField(max_length=128, blank=True, verbose_name=_("service id"))
    package_id = models.CharField(max_length=40, blank=True, verbose_name=_("package id"))
    document = models.JSONField(
        help_text=_("the event as delivered, without the snapshot"), verbose_name=_("document")
    )
    snapshot_path = models.CharField(max_length=1024, blank=True, verbose_name=_("snapshot path"))
    snapshot_bytes = models.PositiveIntegerField(default=0, verbose_name=_("snapshot bytes"))
    received_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("received at")
    )

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name_plural = _("task events")
        verbose_name = _("task event")

    def __str__(self) -> str:
        return f"{self.event_id} of {self.task_id} at {self.event_time:%Y-%m-%d %H:%M:%S}"


class Delivery(models.Model):
    """One event to one receiver: retried with back-off until delivered, or
    dead-lettered; replayable."""

    event = models.ForeignKey(
        TaskEvent, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    target = models.CharField(max_length=1024, verbose_name=_("target"))
    state = models.CharField(
        max_length=10,
        choices=DeliveryState.choices,
        default=DeliveryState.PENDING,
        db_index=True,
        verbose_name=_("state"),
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    next_attempt_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("next attempt at")
    )
    last_status = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("last status"))
    last_error = models.CharField(max_length=512, blank=True, verbose_name=_("last error"))
    claimed_until = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed until"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    class Meta:
        verbose_name_plural = _("deliveries")
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]
        verbose_name = _("delivery")

    def __str__(self) -> str:
        return f"{self.event.event_key} → {self.target}"


class ViewLibrary(models.Model):
    """A GA/T 1400 view library (视图库) events are delivered to, with its
    registration state (tasks.sinks.gat1400 keeps it; docs/gat1400.md)."""

    key = models.CharField(
        max_length=300,
        unique=True,
        help_text=_("'settings' or user@host/DeviceID"),
        verbose_name=_("key"),
    )
    target = models.CharField(
        max_length=1024, help_text=_("the delivery target it serves"), verbose_name=_("target")
    )
    base_url = models.CharField(max_length=1024, verbose_name=_("base url"))
    device_id = models.CharField(_("DeviceID"), max_length=20)
    registered = models.BooleanField(default=False, verbose_name=_("registered"))
    registered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("registered at"))
    keepalive_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("last keepalive answered"),
        verbose_name=_("keepalive at"),
    )
    last_error = models.CharField(max_length=512, blank=True, verbose_name=_("last error"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("GA/T 1400 view library")
        verbose_name_plural = _("GA/T 1400 view libraries")

    def __str__(self) -> str:
        return self.key


# --- GA/T 1400 image input (tasks/images.py, docs/gat1400.md "Image input") ----------


class ImageIntake(models.Model):
    """Which algorithm analyses the images a view library pushes to the
    facility, with which rules, and where the results go. Set up by the
    operator in the admin; an image goes to the enabled intake that lists its
    DeviceID, else to the enabled intake that lists none."""

    name = models.SlugField(
        max_length=64,
        unique=True,
        help_text=_("events carry TaskID image:<name>"),
        verbose_name=_("name"),
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    device_ids = models.CharField(
        _("DeviceIDs"),
        max_length=1024,
        blank=True,
        help_text=_("ImageInfo.DeviceID values taken, comma-separated; empty = every other device"),
    )
    algo_name = models.CharField(
        _("AlgoCaBinName"), max_length=128, blank=True, help_text=_("the algorithm (package Name)")
    )
    algo_version = models.CharField(max_length=20, blank=True, verbose_name=_("algo version"))
    service = models.ForeignKey(
        AlgoService,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text=_("or this algorithm service only"),
        verbose_name=_("service"),
    )
    rules = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "RulesParams as in a task: EventID, Areas, Masks, "
            "ExtendParams.Sensitivity, ResultReceiveUrl"
        ),
        verbose_name=_("rules"),
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("GA/T 1400 image intake")
        ordering = ["name"]
        verbose_name_plural = _("GA/T 1400 image intakes")

    def __str__(self) -> str:
        return self.name

    @property
    def task_id(self) -> str:
        return f"image:{self.name}"

    def device_list(self) -> list[str]:
        return [part.strip() for part in self.device_ids.split(",") if part.strip()]

    def receive_urls(self, event_id: str = "") -> list[str]:
        urls: list[str] = []
        for rule in self.rules if isinstance(self.rules, list) else []:
            if not isinstance(rule, dict):
                continue
            if event_id and rule.get("EventID") and rule.get("EventID") != event_id:
                continue
            for url in rule.get("ResultReceiveUrl") or []:
                if isinstance(url, str) and url not in urls:
                    urls.append(url)
        return urls


class ImageJob(models.Model):
    """One received image: stored on disk before it is acknowledged, then
    analysed by a replica with image capacity (retried until one is free),
    its events queued for delivery like a task's."""

    image_id = models.CharField(_("ImageID"), max_length=64, unique=True)
    device_id = models.CharField(_("DeviceID"), max_length=64, blank=True, db_index=True)
    intake = models.ForeignKey(
        ImageIntake, on_delete=models.PROTECT, related_name="jobs", verbose_name=_("intake")
    )
    info = models.JSONField(
        default=dict, help_text=_("ImageInfo as received, without Data"), verbose_name=_("info")
    )
    source = models.CharField(
        max_length=24, help_text=_("/VIID/Images or a notification"), verbose_name=_("source")
    )
    path = models.CharField(max_length=1024, verbose_name=_("path"))
    size = models.PositiveIntegerField(default=0, verbose_name=_("size"))
    shot_at = models.DateTimeField(
        help_text=_("ShotTime, else when it was received"), verbose_name=_("shot at")
    )
    state = models.CharField(
        max_length=10,
        choices=ImageJobState.choices,
        default=ImageJobState.PENDING,
        db_index=True,
        verbose_name=_("state"),
    )
    reason = models.CharField(max_length=512, blank=True, verbose_name=_("reason"))
    attempts = models.PositiveIntegerField(
        default=0, help_text=_("engine calls that failed"), verbose_name=_("attempts")
    )
    next_attempt_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("next attempt at")
    )
    replica = models.ForeignKey(
        Replica,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="image_jobs",
        verbose_name=_("replica"),
    )
    slot = models.PositiveSmallIntegerField(null=True, blank=True, verbose_name=_("slot"))
    claimed_until = models.DateTimeField(null=True, blank=True, verbose_name=_("claimed until"))
    objects_found = models.PositiveIntegerField(default=0, verbose_name=_("objects found"))
    events = models.PositiveIntegerField(default=0, verbose_name=_("events"))
    created_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("created at")
    )
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("input image")
        ordering = ["-created_at", "-id"]
        constraints = [
            # one running image per image slot of a replica: Analyze_Quota
            # slots, claimed by inserting into this index (tasks/images.py)
            models.UniqueConstraint(
                fields=["replica", "slot"],
                condition=models.Q(state="running"),
                name="image_job_slot",
            )
        ]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="image_job_due")]
        verbose_name_plural = _("input images")

    def __str__(self) -> str:
        return self.image_id
