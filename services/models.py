from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone

from algorithms.models import AlgoFilePackage
from compute.models import Node, XpuCard
from facility.history import history
from services.choices import ReplicaState, ServiceKind, ServiceStatus


def new_service_id() -> str:
    return "svc-" + uuid.uuid4().hex[:16]


class AlgoServiceQuerySet(models.QuerySet["AlgoService"]):
    def visible(self) -> AlgoServiceQuerySet:
        """Services the platform can see (not being torn down)."""
        return self.filter(deleted_at__isnull=True)


class AlgoService(models.Model):
    """An algorithm service (表J.7): a package running as N replicas; also a
    package installed on this device (CAD 表4, kind=machine)."""

    service_id = models.CharField("AlgoServiceID", max_length=128, primary_key=True)
    kind = models.CharField(max_length=8, choices=ServiceKind.choices, default=ServiceKind.SERVICE)
    package = models.ForeignKey(AlgoFilePackage, on_delete=models.PROTECT, related_name="services")
    replicas = models.PositiveIntegerField("desired replicas")
    xpu_type = models.CharField("XpuType", max_length=20)
    env = models.JSONField(default=list, blank=True, help_text='[{"Name", "Value"}]')
    args = models.CharField(max_length=1024, blank=True, help_text="CAD 表4 Args")
    host_name = models.CharField("HostName", max_length=50, blank=True)
    runtime = models.CharField(max_length=16)
    image = models.CharField(max_length=256, blank=True, help_text="loaded image (docker)")
    xpu_quota = models.FloatField("XpuQuota", default=0)
    stream_capacity = models.PositiveIntegerField(
        default=0, help_text="Stream_Video_Quota of one replica"
    )
    status = models.CharField(
        max_length=16, choices=ServiceStatus.choices, default=ServiceStatus.INIT, db_index=True
    )
    status_reason = models.TextField(blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()
    objects = AlgoServiceQuerySet.as_manager()

    class Meta:
        verbose_name = "algorithm service"
        ordering = ["-created_at", "service_id"]

    def __str__(self) -> str:
        return self.service_id

    def env_dict(self) -> dict[str, str]:
        return {item["Name"]: item.get("Value", "") for item in self.env}


class Replica(models.Model):
    """One running copy of a service on a node, holding a share of a card."""

    service = models.ForeignKey(AlgoService, on_delete=models.CASCADE, related_name="replica_set")
    index = models.PositiveIntegerField()
    name = models.CharField(max_length=63, unique=True)
    node = models.ForeignKey(Node, on_delete=models.PROTECT, related_name="replicas")
    card = models.ForeignKey(
        XpuCard, on_delete=models.SET_NULL, null=True, blank=True, related_name="replicas"
    )
    quota = models.FloatField(default=0, help_text="share of the card held")
    port = models.PositiveIntegerField(help_text="engine port on the node")
    runtime = models.CharField(max_length=16)
    handle_ref = models.CharField(max_length=128, blank=True)
    state = models.CharField(
        max_length=12, choices=ReplicaState.choices, default=ReplicaState.PENDING, db_index=True
    )
    reason = models.TextField(blank=True)
    restarts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    healthy_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        ordering = ["service", "index"]
        constraints = [
            models.UniqueConstraint(fields=["service", "index"], name="replica_index_unique"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def engine_url(self) -> str:
        host = "127.0.0.1" if self.node.is_local else (self.node.ip or "127.0.0.1")
        return f"http://{host}:{self.port}"


class ServiceEvent(models.Model):
    """What happened to a service's replicas (started, healthy, crashed,
    restarted, re-adopted, stopped), for operators."""

    service = models.ForeignKey(AlgoService, on_delete=models.CASCADE, related_name="events")
    replica_name = models.CharField(max_length=63, blank=True)
    at = models.DateTimeField(default=timezone.now, db_index=True)
    kind = models.CharField(max_length=32)
    message = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.replica_name}"
