"""/CCP state kept by the facility: the engines pushed (表18) and the
workloads asked for (表20). Pods are not stored: they are observed from the
backend each time (containers on Docker, Pod objects on Kubernetes)."""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from ccp.choices import EngineState, FileType
from facility.history import history


class Engine(models.Model):
    """An algorithm engine pushed by the platform (表F.1): a container image
    made available to the cluster's backend."""

    package_id = models.CharField("AlgoFilePackageID", max_length=40, primary_key=True)
    file_type = models.CharField("FileType", max_length=20, choices=FileType.choices)
    url = models.CharField("Url", max_length=1024)
    auth_address = models.CharField(
        "AuthAddress",
        max_length=1024,
        blank=True,
        help_text="licence servers Ip:Port[,Ip:Port]; given to the engine's pods as AUTH_ADDRESS",
    )
    image = models.CharField(max_length=256, blank=True, help_text="image reference once loaded")
    state = models.CharField(
        max_length=16, choices=EngineState.choices, default=EngineState.PENDING, db_index=True
    )
    reason = models.TextField(blank=True)
    generation = models.PositiveIntegerField(default=1, help_text="bumped by each push")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        ordering = ["-created_at", "package_id"]

    def __str__(self) -> str:
        return self.package_id


class Workload(models.Model):
    """A workload (表G.1): a Deployment on Kubernetes, a labelled set of
    containers kept at `replicas` on Docker."""

    namespace = models.CharField(max_length=63, default="default")
    name = models.CharField(max_length=57)
    cluster_code = models.CharField("ClusterCode", max_length=256, blank=True)
    labels = models.JSONField(default=dict, blank=True, help_text="pod template labels")
    label_selector = models.JSONField(default=dict, blank=True)
    replicas = models.PositiveIntegerField()
    container_name = models.CharField(max_length=63)
    image = models.CharField(max_length=256)
    cpu = models.PositiveIntegerField("Cpu (cores)")
    xpu_type = models.CharField("XpuType", max_length=20, blank=True)
    xpu = models.FloatField("Xpu (cards)", default=0)
    memory = models.PositiveIntegerField("Memory (Gi)")
    command = models.CharField(max_length=1024, blank=True)
    args = models.CharField(max_length=2048, blank=True)
    backend = models.CharField(max_length=16)
    reason = models.TextField(blank=True, help_text="the backend's last complaint, if any")
    created = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = history()

    class Meta:
        ordering = ["-created", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["namespace", "name"], name="ccp_workload_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"
