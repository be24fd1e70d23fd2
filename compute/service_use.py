"""Per-service use of the cards: AlgoServiceMonitors (表A.3) and
XpuUseDetails (表H.4), from stored rows only.

- XpuUseDetails come from Replica rows: per node, per service, the sum of
  the quota its live replicas (ReplicaState.live()) hold there.
- AlgoServiceMonitors come from the card samples: each GPU process of a
  sample (`ResourceSample.processes`) is mapped to the live replica on the
  same node that owns it (`replica_owns`), and the service's use of a card is
  the GPU memory of its processes; NVML reports utilisation per card only, so
  a service's share of a card's utilisation is its share of the memory the
  card's processes hold. A service whose replicas hold a card but show no GPU
  process there appears with zeros.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compute.rollup import Window

# started times closer than this are the same process (the handle keeps 2 decimals)
_START_TOLERANCE_S = 1.0
_MIN_CONTAINER_ID = 12

Trend = list[dict[str, float]]


@dataclass(frozen=True)
class ReplicaRef:
    """What the mapping needs of a Replica row."""

    service_id: str
    package_id: str
    xpu_type: str
    node_id: int
    card_id: int | None
    runtime: str
    handle_ref: str


def _local_ref(handle_ref: str) -> tuple[int, float | None] | None:
    """A local runtime's "pid:starttime" (or a bare pid) → (pid, start)."""
    head, _, tail = handle_ref.partition(":")
    if not head.isdigit():
        return None
    try:
        start = float(tail) if tail else None
    except ValueError:
        start = None
    return int(head), start


def _is_container_id(text: str) -> bool:
    return len(text) >= _MIN_CONTAINER_ID and all(c in "0123456789abcdef" for c in text)


def replica_owns(runtime: str, handle_ref: str, process: Mapping[str, Any]) -> bool:
    """Whether the GPU process of a sample belongs to the replica with this
    runtime and handle. A local replica's handle is "pid:starttime" of its
    engine: the engine itself (same pid, same start time when both are known)
    or any process descending from it. A docker replica's handle is its
    container id: any process in that container (ids compare by prefix, so
    short ids work too)."""
    ref = handle_ref.strip().lower()
    if not ref:
        return False
    local = _local_ref(ref) if runtime != "docker" else None
    if local is not None:
        pid, start = local
        if process.get("Pid") == pid:
            started = process.get("Started")
            return start is None or started is None or abs(started - start) < _START_TOLERANCE_S
        return pid in (process.get("Parents") or ())
    container = str(process.get("Container") or "").lower()
    if runtime != "local" and _is_container_id(ref) and _is_container_id(container):
        return container.startswith(ref) or ref.startswith(container)
    return False


def owner_of(process: Mapping[str, Any], replicas: Iterable[ReplicaRef]) -> ReplicaRef | None:
    for replica in replicas:
        if replica_owns(replica.runtime, replica.handle_ref, process):
            return replica
    return None


def live_replicas(node_ids: list[int]) -> list[ReplicaRef]:
    from services.choices import ReplicaState
    from services.models import Replica

    rows = (
        Replica.objects.filter(node_id__in=node_ids, state__in=ReplicaState.live())
        .order_by("service_id", "index")
        .values_list(
            "service_id",
            "service__package_id",
            "service__xpu_type",
            "node_id",
            "card_id",
            "runtime",
            "handle_ref",
        )
    )
    return [ReplicaRef(*row) for row in rows]


def xpu_use_details(node_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """表H.4 per node: [{"AlgoServiceID", "XpuQuota"}], the quota summed over
    the service's live replicas on that node, ordered by AlgoServiceID."""
    from django.db.models import Sum

    from services.choices import ReplicaState
    from services.models import Replica

    rows = (
        Replica.objects.filter(node_id__in=node_ids, state__in=ReplicaState.live())
        .values("node_id", "service_id")
        .annotate(quota=Sum("quota"))
        .order_by("node_id", "service_id")
    )
    details: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        details[row["node_id"]].append(
            {"AlgoServiceID": row["service_id"], "XpuQuota": round(row["quota"] or 0.0, 4)}
        )
    return details


# --- AlgoServiceMonitors ------------------------------------------------------


@dataclass
class CardUse:
    """One service's use of one card: now and per trend bucket."""

    memory_used_gb: float = 0.0
    utilization: float = 0.0
    # bucket start ms -> [memory sum, utilisation sum] over the card's samples
    buckets: dict[int, list[float]] = field(default_factory=dict)


@dataclass
class ServiceMonitor:
    """表A.3 of one service over a set of cards (a node's or a cluster's)."""

    service_id: str
    package_id: str
    xpu_type: str
    memory_gb: float = 0.0
    memory_used_gb: float = 0.0
    utilization: float = 0.0
    memory_used_trend: Trend = field(default_factory=list)
    utilization_trend: Trend = field(default_factory=list)


@dataclass
class CardInfo:
    card_id: int
    node_id: int
    xpu_type: str
    memory_gb: float


class _Owners:
    """owner_of, remembered per node and process identity: the same
    processes appear in sample after sample."""

    def __init__(self, by_node: dict[int, list[ReplicaRef]]) -> None:
        self.by_node = by_node
        self.known: dict[tuple[Any, ...], str | None] = {}

    def service_of(self, node_id: int, process: Mapping[str, Any]) -> str | None:
        parents = process.get("Parents")
        key = (
            node_id,
            process.get("Pid"),
            process.get("Started"),
            tuple(parents) if parents else (),
            process.get("Container"),
        )
        try:
            return self.known[key]
        except KeyError:
            owner = owner_of(process, self.by_node.get(node_id, ()))
            service_id = owner.service_id if owner is not None else None
            self.known[key] = service_id
            return service_id


def _shares(
    processes: list[Mapping[str, Any]], node_id: int, owners: _Owners
) -> dict[str, tuple[float, float]]:
    """service id -> (GPU memory GB of its processes, share of the card's
    process memory) for one card sample."""
    memory: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    total = 0.0
    for process in processes:
        used = float(process.get("MemoryUsedGB") or 0.0)
        total += used
        service_id = owners.service_of(node_id, process)
        if service_id is not None:
            memory[service_id] += used
            count[service_id] += 1
    result = {}
    for service_id in count:
        # where the driver hides memory (containers), share by process count
        share = memory[service_id] / total if total > 0 else count[service_id] / len(processes)
        result[service_id] = (memory[service_id], share)
    return result


class ServiceUseIndex:
    """The per (service, card) use of a set of nodes, built from the newest
    card samples and the card samples of the trend window."""

    def __init__(self, replicas: list[ReplicaRef], cards: dict[int, CardInfo]) -> None:
        self.replicas = replicas
        self.cards = cards
        self.by_node: dict[int, list[ReplicaRef]] = defaultdict(list)
        self.services: dict[str, ReplicaRef] = {}
        self.use: dict[tuple[str, int], CardUse] = {}
        self.owners = _Owners(self.by_node)
        # (card id, bucket start ms) -> samples of the card in that bucket
        self.samples: dict[tuple[int, int], int] = defaultdict(int)
        # self.samples by card, built by the first monitors() call
        self._by_card: dict[int, list[tuple[int, int]]] | None = None
        # service ids holding each card (listed with zeros when idle)
        self.holders: dict[int, set[str]] = defaultdict(set)
        for replica in replicas:
            self.by_node[replica.node_id].append(replica)
            self.services.setdefault(replica.service_id, replica)
            if replica.card_id is not None and replica.card_id in cards:
                # holding a card: listed, with zeros until a process shows up
                self.use.setdefault((replica.service_id, replica.card_id), CardUse())
                self.holders[replica.card_id].add(replica.service_id)

    def add_current(self, card_id: int, utilization: float, processes: list[Any]) -> None:
        card = self.cards.get(card_id)
        if card is None:
            return
        for service_id, (memory, share) in _shares(processes, card.node_id, self.owners).items():
            use = self.use.setdefault((service_id, card_id), CardUse())
            use.memory_used_gb = memory
            use.utilization = utilization * share

    def add_sample(
        self, card_id: int, bucket_ms: int, utilization: float, processes: list[Any]
    ) -> None:
        card = self.cards.get(card_id)
        if card is None:
            return
        self.samples[(card_id, bucket_ms)] += 1
        shares = _shares(processes, card.node_id, self.owners) if processes else {}
        for service_id, (memory, share) in shares.items():
            self.add_use(service_id, card_id, bucket_ms, memory, utilization * share)

    def add_use(
        self, service_id: str, card_id: int, bucket_ms: int, memory: float, utilization: float
    ) -> None:
        use = self.use.setdefault((service_id, card_id), CardUse())
        point = use.buckets.setdefault(bucket_ms, [0.0, 0.0])
        point[0] += memory
        point[1] += utilization

    def monitors(self, card_ids: Iterable[int]) -> list[ServiceMonitor]:
        """One monitor per service using any of `card_ids`, by AlgoServiceID:
        memory summed over its cards, utilisation the mean over its cards."""
        wanted = set(card_ids)
        # the buckets each card reported in, with their sample counts (once
        # per index: a cluster asks for each node's monitors and its own)
        if self._by_card is None:
            self._by_card = defaultdict(list)
            for (card_id, bucket), samples in self.samples.items():
                self._by_card[card_id].append((bucket, samples))
        by_card = self._by_card
        grouped: dict[str, list[tuple[CardInfo, CardUse]]] = defaultdict(list)
        for (service_id, card_id), use in sorted(self.use.items()):
            if card_id in wanted:
                grouped[service_id].append((self.cards[card_id], use))
        result = []
        for service_id, uses in sorted(grouped.items()):
            replica = self.services.get(service_id)
            monitor = ServiceMonitor(
                service_id=service_id,
                package_id=replica.package_id if replica else "",
                xpu_type=uses[0][0].xpu_type,
                memory_gb=sum(card.memory_gb for card, _ in uses),
                memory_used_gb=sum(use.memory_used_gb for _, use in uses),
                utilization=sum(use.utilization for _, use in uses) / len(uses),
            )
            memory: dict[int, float] = defaultdict(float)
            utilization: dict[int, list[float]] = defaultdict(list)
            for card, use in uses:
                # every bucket the card reported in; a service without a
                # process there counts as zero (it holds the card, idle)
                for bucket, samples in by_card.get(card.card_id, ()):
                    mem_sum, util_sum = use.buckets.get(bucket, (0.0, 0.0))
                    memory[bucket] += mem_sum / samples
                    utilization[bucket].append(util_sum / samples)
            for bucket in sorted(memory):
                values = utilization[bucket]
                monitor.memory_used_trend.append({str(bucket): round(memory[bucket], 3)})
                monitor.utilization_trend.append({str(bucket): round(sum(values) / len(values), 4)})
            result.append(monitor)
        return result


def build_index(
    node_ids: list[int],
    cards: dict[int, CardInfo],
    window_start: datetime,
    bucket_width_ms: int,
    current: Mapping[int, tuple[float, list[Any]]] | None = None,
    window: Window | None = None,
) -> ServiceUseIndex | None:
    """Reads the live replicas of `node_ids` and, when there are any, the
    card samples that say what their processes use (the newest of each card
    and those of the trend window). `current` may bring the newest
    (utilisation, processes) of each card, `window` the rollup minutes of
    the trend window, when the caller read them already. None when no
    service runs there."""
    from compute.models import ResourceSample

    replicas = live_replicas(node_ids)
    if not replicas:
        return None
    index = ServiceUseIndex(replicas, cards)
    nodes_with_replicas = {replica.node_id for replica in replicas}
    card_ids = [card_id for card_id, card in cards.items() if card.node_id in nodes_with_replicas]
    if not card_ids:
        return index
    for card_id in card_ids:
        newest: tuple[float | None, Any] | None
        if current is not None:
            newest = current.get(card_id)
        else:
            newest = (
                ResourceSample.objects.filter(node_id=cards[card_id].node_id, card_id=card_id)
                .order_by("-taken_at")
                .values_list("xpu_utilization", "processes")
                .first()
            )
        if newest is not None:
            index.add_current(card_id, newest[0] or 0.0, newest[1] or [])
    if window is not None:
        _window_from_rollup(index, set(card_ids), window, bucket_width_ms)
        return index
    from django.db import connection
    from django.db.models import Value
    from django.db.models.functions import Floor

    from compute.actions import EpochMs

    if connection.vendor == "postgresql":
        _window_in_postgresql(index, card_ids, window_start, bucket_width_ms)
        return index
    samples = (
        ResourceSample.objects.filter(card_id__in=card_ids, taken_at__gte=window_start)
        .annotate(bucket=Floor(EpochMs("taken_at") / Value(bucket_width_ms)))
        .order_by()
        .values_list("card_id", "bucket", "xpu_utilization", "processes")
    )
    for card_id, bucket, utilization, processes in samples:
        index.add_sample(
            card_id, int(bucket) * bucket_width_ms, utilization or 0.0, processes or []
        )
    return index


def _window_from_rollup(
    index: ServiceUseIndex, card_ids: set[int], window: Window, width_ms: int
) -> None:
    """The same sums as `add_sample` over the window, from the rollup
    minutes (per process identity, summed over the minute's samples) and
    the raw samples of the window's partial first minute."""
    from compute.rollup import process_of

    # the same processes show up minute after minute: map each key once
    owner_of_key: dict[tuple[int, str], str | None] = {}
    for _node_id, card_id, start_s, samples, *_values, processes in window.minutes:
        if card_id not in card_ids:
            continue
        bucket_ms = start_s * 1000 // width_ms * width_ms
        index.samples[(card_id, bucket_ms)] += samples
        node_id = index.cards[card_id].node_id
        for key, (memory, utilization) in (processes or {}).items():
            try:
                service_id = owner_of_key[(node_id, key)]
            except KeyError:
                service_id = owner_of_key[(node_id, key)] = index.owners.service_of(
                    node_id, process_of(key)
                )
            if service_id is not None:
                index.add_use(service_id, card_id, bucket_ms, memory, utilization)
    for _node_id, card_id, taken_at, *values, processes in window.head:
        if card_id not in card_ids:
            continue
        bucket_ms = int(taken_at.timestamp() * 1000 // width_ms) * width_ms
        index.add_sample(card_id, bucket_ms, values[3] or 0.0, processes or [])


_PG_WINDOW = """
WITH s AS (
    SELECT card_id,
           floor(date_part('epoch', taken_at) * 1000 / %(width)s)::bigint AS bucket,
           coalesce(xpu_utilization, 0) AS util,
           processes,
           (SELECT coalesce(sum((p ->> 'MemoryUsedGB')::float8), 0)
              FROM jsonb_array_elements(processes) p) AS total,
           jsonb_array_length(processes) AS n
      FROM compute_resourcesample
     WHERE card_id = ANY(%(cards)s) AND taken_at >= %(since)s
       AND jsonb_typeof(processes) = 'array'
), counts AS (
    SELECT card_id, bucket, 0 AS kind, NULL::text AS pid, NULL::text AS started,
           NULL::text AS parents, NULL::text AS container, count(*)::float8 AS memory,
           0::float8 AS utilization
      FROM s GROUP BY card_id, bucket
), uses AS (
    SELECT card_id, bucket, 1 AS kind, p ->> 'Pid', p ->> 'Started', p ->> 'Parents',
           p ->> 'Container',
           sum(coalesce((p ->> 'MemoryUsedGB')::float8, 0)),
           sum(CASE WHEN total > 0
                    THEN util * coalesce((p ->> 'MemoryUsedGB')::float8, 0) / total
                    ELSE util / n END)
      FROM s, jsonb_array_elements(s.processes) p
     GROUP BY 1, 2, 3, 4, 5, 6, 7
)
SELECT * FROM counts UNION ALL SELECT * FROM uses
"""


def _window_in_postgresql(
    index: ServiceUseIndex, card_ids: list[int], since: datetime, width_ms: int
) -> None:
    """The same sums as `add_sample` over the window, computed by
    PostgreSQL: it unnests the processes and groups them by card, bucket and
    process identity, so Python maps a few identities instead of decoding
    every sample."""
    import json

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(_PG_WINDOW, {"width": width_ms, "cards": card_ids, "since": since})
        rows = cursor.fetchall()
    for card_id, bucket, kind, pid, started, parents, container, memory, utilization in rows:
        bucket_ms = int(bucket) * width_ms
        if kind == 0:
            index.samples[(card_id, bucket_ms)] += int(memory)
            continue
        card = index.cards.get(card_id)
        if card is None:
            continue
        process: dict[str, Any] = {}
        if pid is not None and pid.lstrip("-").isdigit():
            process["Pid"] = int(pid)
        if started is not None:
            with contextlib.suppress(ValueError):
                process["Started"] = float(started)
        if parents:
            with contextlib.suppress(ValueError):
                process["Parents"] = json.loads(parents)
        if container:
            process["Container"] = container
        service_id = index.owners.service_of(card.node_id, process)
        if service_id is not None:
            index.add_use(service_id, card_id, bucket_ms, memory, utilization)
