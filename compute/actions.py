"""Operations on clusters, nodes and samples; views and jobs call only these.

Every answer about resource use is read from stored samples (never measured
while a request waits): the sampler and the node agents write them."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Avg, Count, FloatField, Func, Min, ProtectedError, Value
from django.db.models.functions import Floor
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from compute import rollup
from compute.models import Cluster, Node, ResourceSample, XpuCard
from compute.probes import Reading
from compute.service_use import (
    CardInfo,
    ServiceMonitor,
    ServiceUseIndex,
    xpu_use_details,
)
from compute.service_use import build_index as build_service_index
from facility.errors import Conflict, FacilityError, Invalid, NotFound

NODE_NAME_RULE = re.compile(r"^(?!\d+$)[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
NODE_NAME_HELP = gettext_noop(
    "1–128 letters, digits, '.', '_' or '-', starting with a letter or digit and not all "
    "digits (an all-digit NodeID means the node's numeric ID)"
)


# --- clusters and nodes -----------------------------------------------------


def ensure_cluster(code: str, name: str = "") -> Cluster:
    cluster, _ = Cluster.objects.get_or_create(code=code, defaults={"name": name})
    return cluster


def get_cluster(code: str) -> Cluster:
    cluster = Cluster.objects.filter(code=code).first()
    if cluster is None:
        raise NotFound(
            _("no cluster with ClusterCode %(code)s") % {"code": repr(code)}, field="ClusterCode"
        )
    return cluster


def get_node(node_id: str | int) -> Node:
    """A node by its numeric ID or its name."""
    text = str(node_id)
    queryset = Node.objects.select_related("cluster")
    node = queryset.filter(pk=int(text)).first() if text.isdigit() else None
    if node is None:
        node = queryset.filter(name=text).first()
    if node is None:
        raise NotFound(_("no node with NodeID %(id)s") % {"id": repr(text)}, field="NodeID")
    return node


def ensure_local_node() -> Node:
    """The node this facility runs on, registered on first use with its
    inventory (identity and totals; use is left to the sampler)."""
    node = Node.objects.select_related("cluster").filter(is_local=True).first()
    if node is not None:
        return node
    from compute.probes.host import HostProbe

    inventory = HostProbe(settings.FACILITY_DISK_PATH).inventory()
    cluster = ensure_cluster(settings.FACILITY_CLUSTER_CODE, settings.FACILITY_CLUSTER_NAME)
    name = _free_node_name(inventory.hostname or "local")
    try:
        with transaction.atomic():
            node = Node(cluster=cluster, name=name, is_local=True)
            _apply_inventory(node, inventory)
            node.save()
    except IntegrityError:
        # another process registered it first
        node = Node.objects.select_related("cluster").get(is_local=True)
    return node


def _free_node_name(hostname: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "-", hostname)[:120] or "local"
    if base.isdigit():
        base = f"node-{base}"
    name, suffix = base, 1
    while Node.objects.filter(name=name).exists():
        suffix += 1
        name = f"{base}-{suffix}"
    return name


def create_node(
    *,
    name: str,
    cluster_code: str,
    ip: str = "",
    hostname: str = "",
    cpu_arch: str = "x86",
    os: str = "",
    cpu_cores: int = 0,
    memory_gb: float = 0,
    disk_gb: float = 0,
    agent_client: Any = None,
) -> Node:
    if not NODE_NAME_RULE.match(name):
        raise Invalid(_(NODE_NAME_HELP), field="Name")
    cluster = ensure_cluster(cluster_code)
    try:
        with transaction.atomic():
            return Node.objects.create(
                cluster=cluster,
                name=name,
                ip=ip,
                hostname=hostname or name,
                cpu_arch=cpu_arch,
                os=os,
                cpu_cores=cpu_cores,
                memory_gb=memory_gb,
                disk_gb=disk_gb,
                agent_client=agent_client,
            )
    except IntegrityError:
        raise Conflict(
            _("a node named %(name)s exists") % {"name": repr(name)}, field="Name"
        ) from None


def delete_node(node_id: str) -> None:
    """Deletes the node, its cards and samples. The local node comes back on
    its next sample, so deleting it only clears its history."""
    node = get_node(node_id)
    try:
        node.delete()
    except ProtectedError:
        raise Conflict(
            _("node %(name)s still holds algorithm service replicas; remove them first")
            % {"name": node.name},
            field="NodeID",
        ) from None


def list_nodes(cluster_code: str = "") -> Any:
    queryset = Node.objects.select_related("cluster").prefetch_related("cards")
    if cluster_code:
        queryset = queryset.filter(cluster__code=cluster_code)
    return queryset.order_by("pk")


# --- recording samples ------------------------------------------------------


def _apply_inventory(node: Node, reading: Reading) -> None:
    for attr in ("hostname", "ip", "cpu_arch", "os", "cpu_cores"):
        value = getattr(reading, attr)
        if value not in (None, ""):
            setattr(node, attr, value)
    if reading.memory_gb is not None:
        node.memory_gb = round(reading.memory_gb, 3)
    if reading.disk_gb is not None:
        node.disk_gb = round(reading.disk_gb, 3)
    if reading.cards is not None:
        node.xpu_note = "" if reading.cards else (reading.xpu_note or "no cards")[:256]


def _sync_cards(node: Node, reading: Reading) -> dict[int, XpuCard]:
    cards = {card.index: card for card in node.cards.all()}
    if reading.cards is None:
        return cards
    seen = set()
    for card_reading in reading.cards:
        seen.add(card_reading.index)
        card = cards.get(card_reading.index)
        wanted = {
            "uuid": card_reading.uuid[:96],
            "xpu_type": card_reading.xpu_type[:20],
            "memory_gb": round(card_reading.memory_gb, 3),
            "is_present": True,
        }
        if card is None:
            cards[card_reading.index] = XpuCard.objects.create(
                node=node, index=card_reading.index, **wanted
            )
        elif any(getattr(card, key) != value for key, value in wanted.items()):
            for key, value in wanted.items():
                setattr(card, key, value)
            card.save()
    for index in set(cards) - seen:
        # gone (removed, or the driver no longer sees it): out of the monitors
        card = cards[index]
        if card.is_present:
            card.is_present = False
            card.save()
    return cards


def record_reading(
    node: Node, reading: Reading, taken_at: datetime | None = None, period_s: int = 0
) -> None:
    """Store one reading of `node`: inventory changes, cards, samples, and
    `last_seen_at` (what IsOnline is judged by)."""
    taken_at = taken_at or timezone.now()
    period_s = period_s or int(settings.FACILITY_SAMPLE_INTERVAL_S)
    with transaction.atomic():
        node = Node.objects.select_for_update().get(pk=node.pk)
        before = {f: getattr(node, f) for f in _INVENTORY_FIELDS}
        _apply_inventory(node, reading)
        if any(getattr(node, f) != value for f, value in before.items()):
            node.save()  # an inventory change: recorded in the node's history
        cards = _sync_cards(node, reading)
        rows = [
            ResourceSample(
                node=node,
                taken_at=taken_at,
                period_s=period_s,
                cpu_utilization=_ratio(reading.cpu_utilization),
                memory_used_gb=reading.memory_used_gb,
                disk_used_gb=reading.disk_used_gb,
            )
        ]
        for card_reading in reading.cards or []:
            rows.append(
                ResourceSample(
                    node=node,
                    card=cards[card_reading.index],
                    taken_at=taken_at,
                    period_s=period_s,
                    xpu_utilization=_ratio(card_reading.utilization),
                    xpu_memory_used_gb=card_reading.memory_used_gb,
                    processes=card_reading.processes,
                )
            )
        ResourceSample.objects.bulk_create(rows)
        rollup.add(node.pk, rows)
        # heartbeats are not history: update without a historical record
        if node.last_seen_at is None or taken_at > node.last_seen_at:
            Node.objects.filter(pk=node.pk).update(last_seen_at=taken_at)


_INVENTORY_FIELDS = (
    "hostname",
    "ip",
    "cpu_arch",
    "os",
    "cpu_cores",
    "memory_gb",
    "disk_gb",
    "xpu_note",
)


def _ratio(value: float | None) -> float | None:
    return None if value is None else min(1.0, max(0.0, float(value)))


# --- reading status back ----------------------------------------------------

Trend = list[dict[str, float]]


@dataclass
class CardStatus:
    card: XpuCard
    utilization: float = 0.0
    memory_used_gb: float = 0.0
    utilization_trend: Trend = field(default_factory=list)
    memory_used_trend: Trend = field(default_factory=list)


@dataclass
class NodeStatus:
    node: Node
    is_online: bool
    cpu_utilization: float = 0.0
    memory_used_gb: float = 0.0
    disk_used_gb: float = 0.0
    cpu_utilization_trend: Trend = field(default_factory=list)
    memory_used_trend: Trend = field(default_factory=list)
    disk_used_trend: Trend = field(default_factory=list)
    cards: list[CardStatus] = field(default_factory=list)
    # 表A.3 per service using the node's cards (filled when asked for)
    services: list[ServiceMonitor] = field(default_factory=list)
    # 表H.4 [{"AlgoServiceID", "XpuQuota"}] (filled when asked for)
    xpu_use_details: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ClusterStatus:
    cluster: Cluster
    nodes: list[NodeStatus]
    cpu_cores: int = 0
    memory_gb: float = 0.0
    disk_gb: float = 0.0
    cpu_utilization: float = 0.0
    memory_used_gb: float = 0.0
    disk_used_gb: float = 0.0
    cpu_utilization_trend: Trend = field(default_factory=list)
    memory_used_trend: Trend = field(default_factory=list)
    disk_used_trend: Trend = field(default_factory=list)
    services: list[ServiceMonitor] = field(default_factory=list)

    @property
    def cards(self) -> list[CardStatus]:
        return [card for node in self.nodes for card in node.cards]


@dataclass(frozen=True)
class TrendWindow:
    """How far back trends reach and in how many points (buckets)."""

    seconds: float
    points: int

    @classmethod
    def configured(cls) -> TrendWindow:
        return cls(settings.FACILITY_TREND_WINDOW_S, settings.FACILITY_TREND_POINTS)

    @property
    def width_ms(self) -> int:
        return max(1000, int(self.seconds / max(1, self.points) * 1000))

    def start(self) -> datetime:
        return timezone.now() - timedelta(seconds=self.seconds)


_METRICS = ("cpu", "memory", "disk", "xpu", "xpu_memory")


def _trend(points: list[tuple[int, tuple[float | None, ...]]], metric: int, digits: int) -> Trend:
    """The §0 trend format: one single-entry object per bucket, keyed by the
    bucket's start in ms, oldest first. `points` are (ms, metric values)."""
    trend = []
    for ms, values in sorted(points, key=lambda point: point[0]):
        value = values[metric]
        if value is not None:
            trend.append({str(ms): round(value, digits)})
    return trend


class EpochMs(Func):
    """Milliseconds since the Unix epoch of a datetime column, so the
    database averages samples into trend buckets (PostgreSQL and SQLite,
    the two databases the facility runs on)."""

    output_field = FloatField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # date_part is double precision; EXTRACT is numeric (several times slower)
        template = "(date_part('epoch', %(expressions)s) * 1000)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores UTC text. Whole seconds from strftime('%s') plus the
        # milliseconds of '%f' (SS.SSS) are exact; julianday() arithmetic is
        # off by some microseconds, enough to put a sample taken exactly on a
        # bucket's start (every merged sample) into the bucket before. (%%%%
        # is '%' once Django filled the template and the backend its params.)
        template = (
            "(CAST(strftime('%%%%s', %(expressions)s) AS INTEGER) * 1000.0"
            " + CAST(substr(strftime('%%%%f', %(expressions)s), 4) AS INTEGER))"
        )
        return self.as_sql(compiler, connection, template=template, **extra)


Series = tuple[int, int | None]  # (node id, card id or None)


def _trend_points(
    node_ids: list[int], width: int, since: datetime, window: rollup.Window | None = None
) -> dict[Series, list[tuple[int, tuple[float | None, ...]]]]:
    """Per series, the bucket means of the samples since `since`: from the
    rollup minutes of `window` when given (buckets of whole minutes), else
    one grouped query of the raw samples over the (taken_at) index."""
    if window is not None:
        return rollup.trend_points(window, width)
    rows = (
        ResourceSample.objects.filter(node_id__in=node_ids, taken_at__gte=since)
        .annotate(bucket=Floor(EpochMs("taken_at") / Value(width)))
        .values("node_id", "card_id", "bucket")
        .annotate(
            cpu=Avg("cpu_utilization"),
            memory=Avg("memory_used_gb"),
            disk=Avg("disk_used_gb"),
            xpu=Avg("xpu_utilization"),
            xpu_memory=Avg("xpu_memory_used_gb"),
        )
        .order_by()
        .values_list("node_id", "card_id", "bucket", *_METRICS)
    )
    by_series: dict[Series, list[tuple[int, tuple[float | None, ...]]]] = defaultdict(list)
    for node_id, card_id, bucket, *values in rows:
        by_series[(node_id, card_id)].append((int(bucket) * width, tuple(values)))
    return by_series


_NEWEST_FIELDS = (
    "cpu_utilization",
    "memory_used_gb",
    "disk_used_gb",
    "xpu_utilization",
    "xpu_memory_used_gb",
    "processes",  # what the per-service monitors' current values need
)


def _newest_samples(nodes: list[Node]) -> dict[Series, dict[str, Any]]:
    """The newest sample of every series of `nodes`. A node's newest
    reading was taken at its `last_seen_at` (its node row and card rows
    share that time), so one lookup of those instants on the taken_at index
    finds them all; a series that lookup misses (its newest row was merged
    by the downsampler) falls back to a backward scan of its own index."""
    wanted: set[Series] = set()
    for node in nodes:
        wanted.add((node.pk, None))
        wanted.update((node.pk, card.pk) for card in node.cards.all() if card.is_present)
    seen = {node.pk: node.last_seen_at for node in nodes if node.last_seen_at is not None}
    newest: dict[Series, dict[str, Any]] = {}
    if seen:
        rows = (
            ResourceSample.objects.filter(
                node_id__in=list(seen), taken_at__in=sorted(set(seen.values()))
            )
            .order_by("pk")
            .values("node_id", "card_id", "taken_at", *_NEWEST_FIELDS)
        )
        for row in rows:
            if row["taken_at"] == seen[row["node_id"]]:
                newest[(row["node_id"], row["card_id"])] = row
    for node_id, card_id in wanted - set(newest):
        row = (
            ResourceSample.objects.filter(node_id=node_id, card_id=card_id)
            .order_by("-taken_at", "-pk")
            .values("node_id", "card_id", "taken_at", *_NEWEST_FIELDS)
            .first()
        )
        if row is not None:
            newest[(node_id, card_id)] = row
    return newest


def _node_statuses(
    nodes: list[Node], *, monitors: bool, details: bool, window: TrendWindow | None = None
) -> tuple[list[NodeStatus], ServiceUseIndex | None]:
    if not nodes:
        return [], None
    node_ids = [node.pk for node in nodes]
    window = window or TrendWindow.configured()
    width = window.width_ms
    since = window.start()
    minutes = rollup.read_window(node_ids, since, monitors) if rollup.covers(width) else None
    by_series = _trend_points(node_ids, width, since, minutes)
    newest = _newest_samples(nodes)
    statuses = []
    for node in nodes:
        own = by_series.get((node.pk, None), [])
        status = NodeStatus(node=node, is_online=node.is_online)
        sample = newest.get((node.pk, None))
        if sample is not None:
            status.cpu_utilization = sample["cpu_utilization"] or 0.0
            status.memory_used_gb = sample["memory_used_gb"] or 0.0
            status.disk_used_gb = sample["disk_used_gb"] or 0.0
        status.cpu_utilization_trend = _trend(own, 0, 4)
        status.memory_used_trend = _trend(own, 1, 3)
        status.disk_used_trend = _trend(own, 2, 3)
        for card in node.cards.all():
            if not card.is_present:
                continue
            series = by_series.get((node.pk, card.pk), [])
            card_status = CardStatus(card=card)
            sample = newest.get((node.pk, card.pk))
            if sample is not None:
                card_status.utilization = sample["xpu_utilization"] or 0.0
                card_status.memory_used_gb = sample["xpu_memory_used_gb"] or 0.0
            card_status.utilization_trend = _trend(series, 3, 4)
            card_status.memory_used_trend = _trend(series, 4, 3)
            status.cards.append(card_status)
        statuses.append(status)
    index = None
    if monitors:
        cards = {
            card.card.pk: CardInfo(
                card.card.pk, status.node.pk, card.card.xpu_type, card.card.memory_gb
            )
            for status in statuses
            for card in status.cards
        }
        current = {
            card_id: (sample["xpu_utilization"] or 0.0, sample["processes"] or [])
            for (_, card_id), sample in newest.items()
            if card_id is not None
        }
        index = build_service_index(node_ids, cards, since, width, current, minutes)
        if index is not None:
            for status in statuses:
                status.services = index.monitors(card.card.pk for card in status.cards)
    if details:
        quotas = xpu_use_details(node_ids)
        for status in statuses:
            status.xpu_use_details = quotas.get(status.node.pk, [])
    return statuses, index


def node_statuses(
    nodes: list[Node],
    *,
    monitors: bool = True,
    details: bool = False,
    window: TrendWindow | None = None,
) -> list[NodeStatus]:
    """Current values (the newest sample, however old) and trends (the
    configured window, averaged into buckets by the database) of each node
    and its cards; with `monitors` the per-service use of its cards (表A.3),
    with `details` the card quota its services hold (表H.4)."""
    return _node_statuses(nodes, monitors=monitors, details=details, window=window)[0]


def node_status(node: Node) -> NodeStatus:
    return node_statuses([node])[0]


def local_node_status() -> NodeStatus:
    return node_status(ensure_local_node())


def cluster_status(
    cluster: Cluster, *, monitors: bool = True, window: TrendWindow | None = None
) -> ClusterStatus:
    """Totals over every node of the cluster; use (current and trends) over
    the nodes that report, since an offline node's use is unknown."""
    nodes = list(cluster.nodes.prefetch_related("cards").order_by("pk"))
    statuses, index = _node_statuses(nodes, monitors=monitors, details=False, window=window)
    result = ClusterStatus(cluster=cluster, nodes=statuses)
    result.cpu_cores = sum(node.cpu_cores for node in nodes)
    result.memory_gb = sum(node.memory_gb for node in nodes)
    result.disk_gb = sum(node.disk_gb for node in nodes)
    online = [status for status in statuses if status.is_online]
    online_cores = sum(status.node.cpu_cores for status in online)
    if online_cores:
        result.cpu_utilization = (
            sum(s.cpu_utilization * s.node.cpu_cores for s in online) / online_cores
        )
    result.memory_used_gb = sum(status.memory_used_gb for status in online)
    result.disk_used_gb = sum(status.disk_used_gb for status in online)
    result.cpu_utilization_trend = _combine_trends(
        [(s.cpu_utilization_trend, s.node.cpu_cores) for s in statuses], weighted=True
    )
    result.memory_used_trend = _combine_trends([(s.memory_used_trend, 1) for s in statuses])
    result.disk_used_trend = _combine_trends([(s.disk_used_trend, 1) for s in statuses])
    if index is not None:
        result.services = index.monitors(card.card.pk for card in result.cards)
    return result


def _combine_trends(trends: list[tuple[Trend, int]], weighted: bool = False) -> Trend:
    """Per bucket: the sum over nodes, or (weighted) the weight-averaged
    value over the nodes that reported in that bucket."""
    sums: dict[str, float] = defaultdict(float)
    weights: dict[str, float] = defaultdict(float)
    for trend, weight in trends:
        for point in trend:
            ((key, value),) = point.items()
            sums[key] += value * (weight if weighted else 1)
            weights[key] += weight
    points = []
    for key in sorted(sums, key=int):
        value = sums[key] / weights[key] if weighted and weights[key] else sums[key]
        points.append({key: round(value, 4)})
    return points


def all_node_statuses(*, monitors: bool = False, details: bool = True) -> list[NodeStatus]:
    """Every node (表27 needs no per-service monitors, only the quotas)."""
    ensure_local_node()
    nodes = list(Node.objects.select_related("cluster").prefetch_related("cards").order_by("pk"))
    return node_statuses(nodes, monitors=monitors, details=details)


# --- keeping the sample table small -----------------------------------------


def downsample_and_prune(now: datetime | None = None) -> dict[str, int]:
    """Delete samples past retention; merge older raw samples into
    bucket-wide averages. Idempotent: merged rows already span a bucket and
    are left alone unless raw rows arrived late in the same bucket."""
    now = now or timezone.now()
    retention_cutoff = now - timedelta(seconds=settings.FACILITY_SAMPLE_RETENTION_S)
    pruned, _ = ResourceSample.objects.filter(taken_at__lt=retention_cutoff).delete()
    rollup.prune(retention_cutoff)
    bucket_s = settings.FACILITY_SAMPLE_DOWNSAMPLE_BUCKET_S
    cutoff = now - timedelta(seconds=settings.FACILITY_SAMPLE_DOWNSAMPLE_AFTER_S)
    # align the cutoff so no bucket is half merged
    cutoff_epoch = int(cutoff.timestamp()) // bucket_s * bucket_s
    cutoff = datetime.fromtimestamp(cutoff_epoch, tz=UTC)
    raw = ResourceSample.objects.filter(taken_at__lt=cutoff, period_s__lt=bucket_s)
    span = raw.aggregate(first=Min("taken_at"), count=Count("pk"))
    merged = 0
    if span["first"] is None:
        return {"pruned": pruned, "merged_into": 0}
    start_epoch = int(span["first"].timestamp()) // bucket_s * bucket_s
    # one bucket-wide step at a time keeps each transaction short
    for epoch in range(start_epoch, cutoff_epoch, bucket_s):
        merged += _merge_bucket(epoch, bucket_s)
    return {"pruned": pruned, "merged_into": merged}


def _merge_bucket(epoch: int, bucket_s: int) -> int:
    start = datetime.fromtimestamp(epoch, tz=UTC)
    end = start + timedelta(seconds=bucket_s)
    with transaction.atomic():
        rows = ResourceSample.objects.filter(taken_at__gte=start, taken_at__lt=end)
        if not rows.filter(period_s__lt=bucket_s).exists():
            return 0
        groups = rows.values("node_id", "card_id").annotate(
            cpu=Avg("cpu_utilization"),
            memory=Avg("memory_used_gb"),
            disk=Avg("disk_used_gb"),
            xpu=Avg("xpu_utilization"),
            xpu_memory=Avg("xpu_memory_used_gb"),
        )
        merged = [
            ResourceSample(
                node_id=group["node_id"],
                card_id=group["card_id"],
                taken_at=start,
                period_s=bucket_s,
                cpu_utilization=group["cpu"],
                memory_used_gb=group["memory"],
                disk_used_gb=group["disk"],
                xpu_utilization=group["xpu"],
                xpu_memory_used_gb=group["xpu_memory"],
            )
            for group in groups
        ]
        rows.delete()
        ResourceSample.objects.bulk_create(merged)
        rollup.rebuild(epoch, epoch + bucket_s)
    return len(merged)


# --- samples posted by node agents ------------------------------------------


class Forbidden(FacilityError):
    http_status = 403
    code = 40300


def record_agent_reading(node_id: str, client: Any, reading: Reading, period_s: int) -> Node:
    """A reading posted by a remote node's agent, stamped with the time it
    arrived (the agent's clock may be off)."""
    node = get_node(node_id)
    if node.is_local:
        raise Conflict(
            _("node %(name)s is this facility's own node; its sampler records it")
            % {"name": node.name},
            field="NodeID",
        )
    if node.agent_client_id is not None and (
        client is None or getattr(client, "pk", None) != node.agent_client_id
    ):
        raise Forbidden(
            _("this credential may not post samples of node %(name)s") % {"name": node.name}
        )
    record_reading(node, reading, period_s=period_s)
    node.refresh_from_db()
    return node
