"""Clusters, nodes, accelerator cards and the resource samples taken of them.

Units everywhere in this app: memory and disk in GiB (the standard's "GB"),
utilisation as a ratio 0..1. The interfaces convert to percent where a table
asks for it (表H.3)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from compute.choices import CPU_ONLY_XPU_TYPE, CpuArch
from facility.history import history


class Cluster(models.Model):
    """A group of nodes; /CCP/Cluster/Monitors/<ClusterCode> reports one."""

    code = models.CharField("ClusterCode", max_length=256, unique=True)
    name = models.CharField("ClusterName", max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class NodeQuerySet(models.QuerySet["Node"]):
    def online(self) -> NodeQuerySet:
        return self.filter(last_seen_at__gte=timezone.now() - offline_after())


def offline_after() -> timedelta:
    """A node whose newest sample is older than this counts as offline."""
    return timedelta(seconds=settings.FACILITY_NODE_OFFLINE_AFTER_S)


class Node(models.Model):
    """One machine. Its integer primary key is the NodeID of 表17 and the ID of
    表E.6; its name (never all digits) is accepted as NodeID too."""

    cluster = models.ForeignKey(Cluster, on_delete=models.PROTECT, related_name="nodes")
    name = models.CharField(max_length=128, unique=True, help_text="usually the host name")
    hostname = models.CharField(max_length=128, blank=True)
    ip = models.CharField("IP address", max_length=50, blank=True)
    cpu_arch = models.CharField(max_length=10, choices=CpuArch.choices, default=CpuArch.X86)
    os = models.CharField("OS", max_length=64, blank=True)
    cpu_cores = models.PositiveIntegerField(default=0, help_text="logical cores")
    memory_gb = models.FloatField("memory (GiB)", default=0)
    disk_gb = models.FloatField("disk (GiB)", default=0)
    is_local = models.BooleanField(
        default=False, help_text="the machine this facility runs on (sampled in-process)"
    )
    xpu_note = models.CharField(
        max_length=256, blank=True, help_text="why the node reports no cards, when it has none"
    )
    agent_client = models.ForeignKey(
        "facility.PlatformClient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="compute_nodes",
        help_text="when set, only this credential may post samples for the node",
    )
    last_seen_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(default=timezone.now)

    history = history()
    objects = NodeQuerySet.as_manager()

    class Meta:
        ordering = ["cluster__code", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_local"],
                condition=models.Q(is_local=True),
                name="compute_one_local_node",
            )
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def is_online(self) -> bool:
        seen = self.last_seen_at
        return seen is not None and seen >= timezone.now() - offline_after()

    @property
    def xpu_type(self) -> str:
        """表H.2 XpuType: the first card's type, or CPU for a node without cards."""
        card = next((card for card in self.cards.all() if card.is_present), None)
        return card.xpu_type if card is not None else CPU_ONLY_XPU_TYPE


class XpuCard(models.Model):
    """An accelerator card of a node, as NVML (or the node's agent) reports it."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="cards")
    index = models.PositiveIntegerField(help_text="the card's index on its node")
    uuid = models.CharField("UUID", max_length=96, blank=True)
    xpu_type = models.CharField("XpuType", max_length=20, help_text="e.g. NVIDIA_T4")
    memory_gb = models.FloatField("memory (GiB)", default=0)
    # a card the probe no longer sees keeps its row and samples (a driver
    # hiccup must not erase history) but leaves the monitors
    is_present = models.BooleanField(default=True)

    history = history()

    class Meta:
        verbose_name = "accelerator card"
        ordering = ["node", "index"]
        constraints = [
            models.UniqueConstraint(fields=["node", "index"], name="compute_card_index_per_node")
        ]

    def __str__(self) -> str:
        return f"{self.node.name}#{self.index} {self.xpu_type}"


class ResourceSample(models.Model):
    """One reading. A row without a card holds the node's CPU, memory and disk;
    a row with a card holds that card's utilisation and memory. `period_s` is
    the time a row stands for: the sampling cadence for raw rows, the bucket
    width for rows the downsampler merged."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="samples")
    card = models.ForeignKey(
        XpuCard, on_delete=models.CASCADE, null=True, blank=True, related_name="samples"
    )
    taken_at = models.DateTimeField()
    period_s = models.PositiveIntegerField(default=0)
    cpu_utilization = models.FloatField(null=True, blank=True, help_text="ratio 0..1")
    memory_used_gb = models.FloatField(null=True, blank=True)
    disk_used_gb = models.FloatField(null=True, blank=True)
    xpu_utilization = models.FloatField(null=True, blank=True, help_text="ratio 0..1")
    xpu_memory_used_gb = models.FloatField(null=True, blank=True)
    processes = models.JSONField(
        default=list,
        blank=True,
        help_text='GPU memory per process on the card: [{"Pid": 1, "MemoryUsedGB": 0.5}]',
    )

    class Meta:
        indexes = [
            models.Index(fields=["node", "card", "taken_at"], name="compute_sample_node_ts"),
            models.Index(fields=["taken_at"], name="compute_sample_ts"),
        ]

    def __str__(self) -> str:
        return f"{self.node_id}/{self.card_id or '-'} @ {self.taken_at:%Y-%m-%d %H:%M:%S}"
