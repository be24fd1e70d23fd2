"""/CCP state kept by the facility: the engines pushed (表18) and the
workloads asked for (表20). Pods are not stored: they are observed from the
backend each time (containers on Docker, Pod objects on Kubernetes)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ccp.choices import EngineState, FileType
from facility.history import history


class Engine(models.Model):
    """An algorithm engine pushed by the platform (表F.1): a container image
    made available to the cluster's backend."""

    package_id = models.CharField(_("AlgoFilePackageID"), max_length=40, primary_key=True)
    file_type = models.CharField(_("FileType"), max_length=20, choices=FileType.choices)
    url = models.CharField(_("Url"), max_length=1024)
    auth_address = models.CharField(
        _("AuthAddress"),
        max_length=1024,
        blank=True,
        help_text=_(
            "licence servers Ip:Port[,Ip:Port]; given to the engine's pods as AUTH_ADDRESS"
        ),
    )
    image = models.CharField(
        max_length=256,
        blank=True,
        help_text=_("image reference once loaded"),
        verbose_name=_("image"),
    )
    state = models.CharField(
        max_length=16,
        choices=EngineState.choices,
        default=EngineState.PENDING,
        db_index=True,
        verbose_name=_("state"),
    )
    reason = models.TextField(blank=True, verbose_name=_("reason"))
    generation = models.PositiveIntegerField(
        default=1, help_text=_("bumped by each push"), verbose_name=_("generation")
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = history()

    class Meta:
        ordering = ["-created_at", "package_id"]
        verbose_name_plural = _("engines")
        verbose_name = _("engine")

    def __str__(self) -> str:
        return self.package_id


class Workload(models.Model):
    """A workload (表G.1): a Deployment on Kubernetes, a labelled set of
    containers kept at `replicas` on Docker."""

    namespace = models.CharField(max_length=63, default="default", verbose_name=_("namespace"))
    name = models.CharField(max_length=57, verbose_name=_("name"))
    cluster_code = models.CharField(_("ClusterCode"), max_length=256, blank=True)
    labels = models.JSONField(
        default=dict, blank=True, help_text=_("pod template labels"), verbose_name=_("labels")
    )
    label_selector = models.JSONField(default=dict, blank=True, verbose_name=_("label selector"))
    replicas = models.PositiveIntegerField(verbose_name=_("replicas"))
    container_name = models.CharField(max_length=63, verbose_name=_("container name"))
    image = models.CharField(max_length=256, verbose_name=_("image"))
    cpu = models.PositiveIntegerField(_("Cpu (cores)"))
    xpu_type = models.CharField(_("XpuType"), max_length=20, blank=True)
    xpu = models.FloatField(_("Xpu (cards)"), default=0)
    memory = models.PositiveIntegerField(_("Memory (Gi)"))
    command = models.CharField(max_length=1024, blank=True, verbose_name=_("command"))
    args = models.CharField(max_length=2048, blank=True, verbose_name=_("args"))
    backend = models.CharField(max_length=16, verbose_name=_("backend"))
    reason = models.TextField(
        blank=True, help_text=_("the backend's last complaint, if any"), verbose_name=_("reason")
    )
    created = models.DateTimeField(default=timezone.now, db_index=True, verbose_name=_("created"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = history()

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["namespace", "name"], name="ccp_workload_unique_name")
        ]
        verbose_name_plural = _("workloads")
        verbose_name = _("workload")

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"
