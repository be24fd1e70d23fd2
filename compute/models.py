"""Clusters, nodes, accelerator cards and the resource samples taken of them.

Units everywhere in this app: memory and disk in GiB (the standard's "GB"),
utilisation as a ratio 0..1. The interfaces convert to percent where a table
asks for it (表H.3)."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from compute.choices import CPU_ONLY_XPU_TYPE, CpuArch
from facility.history import history


class Cluster(models.Model):
    """A group of nodes; /CCP/Cluster/Monitors/<ClusterCode> reports one."""

    code = models.CharField(_("ClusterCode"), max_length=256, unique=True)
    name = models.CharField(_("ClusterName"), max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    history = history()

    class Meta:
        ordering = ["code"]
        verbose_name_plural = _("clusters")
        verbose_name = _("cluster")

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

    cluster = models.ForeignKey(
        Cluster, on_delete=models.PROTECT, related_name="nodes", verbose_name=_("cluster")
    )
    name = models.CharField(
        max_length=128, unique=True, help_text=_("usually the host name"), verbose_name=_("name")
    )
    hostname = models.CharField(max_length=128, blank=True, verbose_name=_("hostname"))
    ip = models.CharField(_("IP address"), max_length=50, blank=True)
    cpu_arch = models.CharField(
        max_length=10, choices=CpuArch.choices, default=CpuArch.X86, verbose_name=_("cpu arch")
    )
    os = models.CharField(_("OS"), max_length=64, blank=True)
    cpu_cores = models.PositiveIntegerField(
        default=0, help_text=_("logical cores"), verbose_name=_("cpu cores")
    )
    memory_gb = models.FloatField(_("memory (GiB)"), default=0)
    disk_gb = models.FloatField(_("disk (GiB)"), default=0)
    is_local = models.BooleanField(
        default=False,
        help_text=_("the machine this facility runs on (sampled in-process)"),
        verbose_name=_("is local"),
    )
    xpu_note = models.CharField(
        max_length=256,
        blank=True,
        help_text=_("why the node reports no cards, when it has none"),
        verbose_name=_("xpu note"),
    )
    agent_client = models.ForeignKey(
        "facility.PlatformClient",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="compute_nodes",
        help_text=_("when set, only this credential may post samples for the node"),
        verbose_name=_("agent client"),
    )
    last_seen_at = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("last seen at")
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

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
        verbose_name_plural = _("nodes")
        verbose_name = _("node")

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

    node = models.ForeignKey(
        Node, on_delete=models.CASCADE, related_name="cards", verbose_name=_("node")
    )
    index = models.PositiveIntegerField(
        help_text=_("the card's index on its node"), verbose_name=_("index")
    )
    uuid = models.CharField(_("UUID"), max_length=96, blank=True)
    xpu_type = models.CharField(_("XpuType"), max_length=20, help_text=_("e.g. NVIDIA_T4"))
    memory_gb = models.FloatField(_("memory (GiB)"), default=0)
    # a card the probe no longer sees keeps its row and samples (a driver
    # hiccup must not erase history) but leaves the monitors
    is_present = models.BooleanField(default=True, verbose_name=_("is present"))

    history = history()

    class Meta:
        verbose_name = _("accelerator card")
        ordering = ["node", "index"]
        constraints = [
            models.UniqueConstraint(fields=["node", "index"], name="compute_card_index_per_node")
        ]
        verbose_name_plural = _("accelerator cards")

    def __str__(self) -> str:
        return f"{self.node.name}#{self.index} {self.xpu_type}"


class ResourceSample(models.Model):
    """One reading. A row without a card holds the node's CPU, memory and disk;
    a row with a card holds that card's utilisation and memory. `period_s` is
    the time a row stands for: the sampling cadence for raw rows, the bucket
    width for rows the downsampler merged."""

    node = models.ForeignKey(
        Node, on_delete=models.CASCADE, related_name="samples", verbose_name=_("node")
    )
    card = models.ForeignKey(
        XpuCard,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="samples",
        verbose_name=_("card"),
    )
    taken_at = models.DateTimeField(verbose_name=_("taken at"))
    period_s = models.PositiveIntegerField(default=0, verbose_name=_("period s"))
    cpu_utilization = models.FloatField(
        null=True, blank=True, help_text=_("ratio 0..1"), verbose_name=_("cpu utilization")
    )
    memory_used_gb = models.FloatField(null=True, blank=True, verbose_name=_("memory used gb"))
    disk_used_gb = models.FloatField(null=True, blank=True, verbose_name=_("disk used gb"))
    xpu_utilization = models.FloatField(
        null=True, blank=True, help_text=_("ratio 0..1"), verbose_name=_("xpu utilization")
    )
    xpu_memory_used_gb = models.FloatField(
        null=True, blank=True, verbose_name=_("xpu memory used gb")
    )
    processes = models.JSONField(
        default=list,
        blank=True,
        help_text=_('GPU memory per process on the card: [{"Pid": 1, "MemoryUsedGB": 0.5}]'),
        verbose_name=_("processes"),
    )

    class Meta:
        indexes = [
            models.Index(fields=["node", "card", "taken_at"], name="compute_sample_node_ts"),
            models.Index(fields=["taken_at"], name="compute_sample_ts"),
        ]
        verbose_name_plural = _("resource samples")
        verbose_name = _("resource sample")

    def __str__(self) -> str:
        return f"{self.node_id}/{self.card_id or '-'} @ {self.taken_at:%Y-%m-%d %H:%M:%S}"


# Width of a rollup row; trends whose bucket width is a multiple of it are
# read from the rollup (the default window of an hour in 60 points is).
ROLLUP_S = 60


class SampleRollup(models.Model):
    """One series (a node, or one of its cards) over one minute: the sums and
    counts of its samples, and per GPU process the memory and utilisation
    share summed over the card's samples. Trends and per-service monitors
    read these, 60 rows per series an hour, instead of every raw sample; the
    sampler adds to them in the transaction that stores its samples and the
    downsampler rebuilds the minutes it merges, so a trend read from them
    equals the one averaged from the samples (compute/rollup.py)."""

    node = models.ForeignKey(
        Node, on_delete=models.CASCADE, related_name="+", verbose_name=_("node")
    )
    card = models.ForeignKey(
        XpuCard,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("card"),
    )
    start_s = models.BigIntegerField(
        help_text=_("Unix time (s) of the minute's start"), verbose_name=_("start s")
    )
    samples = models.PositiveIntegerField(default=0, verbose_name=_("samples"))
    cpu_sum = models.FloatField(default=0, verbose_name=_("cpu sum"))
    cpu_n = models.PositiveIntegerField(default=0, verbose_name=_("cpu n"))
    memory_sum = models.FloatField(default=0, verbose_name=_("memory sum"))
    memory_n = models.PositiveIntegerField(default=0, verbose_name=_("memory n"))
    disk_sum = models.FloatField(default=0, verbose_name=_("disk sum"))
    disk_n = models.PositiveIntegerField(default=0, verbose_name=_("disk n"))
    xpu_sum = models.FloatField(default=0, verbose_name=_("xpu sum"))
    xpu_n = models.PositiveIntegerField(default=0, verbose_name=_("xpu n"))
    xpu_memory_sum = models.FloatField(default=0, verbose_name=_("xpu memory sum"))
    xpu_memory_n = models.PositiveIntegerField(default=0, verbose_name=_("xpu memory n"))
    processes = models.JSONField(
        default=dict,
        blank=True,
        help_text=_(
            "per GPU process identity (JSON of Pid, Started, Parents, Container): "
            "[memory GB, utilisation share] summed over the minute's card samples"
        ),
        verbose_name=_("processes"),
    )

    class Meta:
        # windows, the sampler's lookup of its minute, rebuilds and pruning
        # all select a range of minutes first
        indexes = [models.Index(fields=["start_s", "node"], name="compute_rollup_minute")]
        verbose_name_plural = _("sample rollups")
        verbose_name = _("sample rollup")

    def __str__(self) -> str:
        return f"{self.node_id}/{self.card_id or '-'} @ {self.start_s}"
