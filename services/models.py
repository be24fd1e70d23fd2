from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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

    service_id = models.CharField(_("AlgoServiceID"), max_length=128, primary_key=True)
    kind = models.CharField(
        max_length=8,
        choices=ServiceKind.choices,
        default=ServiceKind.SERVICE,
        verbose_name=_("kind"),
    )
    package = models.ForeignKey(
        AlgoFilePackage,
        on_delete=models.PROTECT,
        related_name="services",
        verbose_name=_("package"),
    )
    replicas = models.PositiveIntegerField(_("desired replicas"))
    xpu_type = models.CharField(_("XpuType"), max_length=20)
    env = models.JSONField(
        default=list, blank=True, help_text=_('[{"Name", "Value"}]'), verbose_name=_("env")
    )
    args = models.CharField(
        max_length=1024, blank=True, help_text=_("CAD 表4 Args"), verbose_name=_("args")
    )
    host_name = models.CharField(_("HostName"), max_length=50, blank=True)
    runtime = models.CharField(max_length=16, verbose_name=_("runtime"))
    image = models.CharField(
        max_length=256, blank=True, help_text=_("loaded image (docker)"), verbose_name=_("image")
    )
    xpu_quota = models.FloatField(_("XpuQuota"), default=0)
    stream_capacity = models.PositiveIntegerField(
        default=0,
        help_text=_("Stream_Video_Quota of one replica"),
        verbose_name=_("stream capacity"),
    )
    status = models.CharField(
        max_length=16,
        choices=ServiceStatus.choices,
        default=ServiceStatus.INIT,
        db_index=True,
        verbose_name=_("status"),
    )
    status_reason = models.TextField(blank=True, verbose_name=_("status reason"))
    deleted_at = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("deleted at")
    )
    created_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = history()
    objects = AlgoServiceQuerySet.as_manager()

    class Meta:
        verbose_name = _("algorithm service")
        ordering = ["-created_at", "service_id"]
        verbose_name_plural = _("algorithm services")

    def __str__(self) -> str:
        return self.service_id

    def env_dict(self) -> dict[str, str]:
        return {item["Name"]: item.get("Value", "") for item in self.env}


class Replica(models.Model):
    """One running copy of a service on a node, holding a share of a card."""

    service = models.ForeignKey(
        AlgoService, on_delete=models.CASCADE, related_name="replica_set", verbose_name=_("service")
    )
    index = models.PositiveIntegerField(verbose_name=_("index"))
    name = models.CharField(max_length=63, unique=True, verbose_name=_("name"))
    node = models.ForeignKey(
        Node, on_delete=models.PROTECT, related_name="replicas", verbose_name=_("node")
    )
    card = models.ForeignKey(
        XpuCard,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replicas",
        verbose_name=_("card"),
    )
    quota = models.FloatField(
        default=0, help_text=_("share of the card held"), verbose_name=_("quota")
    )
    port = models.PositiveIntegerField(
        help_text=_("engine port on the node"), verbose_name=_("port")
    )
    runtime = models.CharField(max_length=16, verbose_name=_("runtime"))
    handle_ref = models.CharField(max_length=128, blank=True, verbose_name=_("handle ref"))
    state = models.CharField(
        max_length=12,
        choices=ReplicaState.choices,
        default=ReplicaState.PENDING,
        db_index=True,
        verbose_name=_("state"),
    )
    reason = models.TextField(blank=True, verbose_name=_("reason"))
    restarts = models.PositiveIntegerField(default=0, verbose_name=_("restarts"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started at"))
    healthy_at = models.DateTimeField(null=True, blank=True, verbose_name=_("healthy at"))
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = history()

    class Meta:
        ordering = ["service", "index"]
        constraints = [
            models.UniqueConstraint(fields=["service", "index"], name="replica_index_unique"),
        ]
        verbose_name_plural = _("replicas")
        verbose_name = _("replica")

    def __str__(self) -> str:
        return self.name

    @property
    def engine_url(self) -> str:
        host = "127.0.0.1" if self.node.is_local else (self.node.ip or "127.0.0.1")
        return f"http://{host}:{self.port}"


class ServiceEvent(models.Model):
    """What happened to a service's replicas (started, healthy, crashed,
    restarted, re-adopted, stopped), for operators."""

    service = models.ForeignKey(
        AlgoService, on_delete=models.CASCADE, related_name="events", verbose_name=_("service")
    )
    replica_name = models.CharField(max_length=63, blank=True, verbose_name=_("replica name"))
    at = models.DateTimeField(default=timezone.now, db_index=True, verbose_name=_("at"))
    kind = models.CharField(max_length=32, verbose_name=_("kind"))
    message = models.TextField(blank=True, verbose_name=_("message"))

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name_plural = _("service events")
        verbose_name = _("service event")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.kind} {self.replica_name}"
