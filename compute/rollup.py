"""Per-minute rollups of the resource samples (compute.models.SampleRollup).

An hour of trends over ten nodes is 7 200 raw samples to average, and the
per-service monitors unnest the GPU processes of every card sample of the
window; the rollup keeps, per series and minute, the sums and counts those
averages need, so a status request reads 60 rows per series instead.

Exactness: a trend bucket's mean is sum / count of the samples in it, and a
rollup minute holds exactly those sums, so a trend whose bucket width is a
multiple of a minute is rebuilt from whole minutes; the window's first,
partial minute (the window starts at "now - window", not on a minute) is
read from the raw samples. Anything that writes or removes samples keeps
the minutes it touches right: `add` (the sampler and the agents, through
`record_reading`) and `rebuild` (the downsampler, pruning, a backfill)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db.models import Case, F, JSONField, Model, When

from compute.models import ROLLUP_S, ResourceSample, SampleRollup

# sample column -> rollup column prefix, in the order trends index them
METRICS = (
    ("cpu_utilization", "cpu"),
    ("memory_used_gb", "memory"),
    ("disk_used_gb", "disk"),
    ("xpu_utilization", "xpu"),
    ("xpu_memory_used_gb", "xpu_memory"),
)
SAMPLE_FIELDS = tuple(column for column, _ in METRICS)
SUM_FIELDS = tuple(f"{prefix}_{part}" for _, prefix in METRICS for part in ("sum", "n"))
ROLLUP_FIELDS = (*SUM_FIELDS, "samples", "processes")

# what identifies a GPU process to service_use.replica_owns
_IDENTITY = ("Pid", "Started", "Parents", "Container")


def minute_of(at: datetime) -> int:
    return int(at.timestamp() // ROLLUP_S) * ROLLUP_S


def first_whole_minute(since: datetime) -> int:
    """The start of the first minute that lies wholly at or after `since`."""
    return math.ceil(since.timestamp() / ROLLUP_S) * ROLLUP_S


def at_second(epoch_s: int) -> datetime:
    return datetime.fromtimestamp(epoch_s, tz=UTC)


def covers(width_ms: int) -> bool:
    """Whether trend buckets of this width are made of whole minutes."""
    return width_ms % (ROLLUP_S * 1000) == 0


def process_key(process: Mapping[str, Any]) -> str:
    parents = process.get("Parents")
    return json.dumps(
        [
            process.get(name) if name != "Parents" else (list(parents) if parents else None)
            for name in _IDENTITY
        ],
        separators=(",", ":"),
    )


def process_of(key: str) -> dict[str, Any]:
    """The identity fields of a process back from its key."""
    values = json.loads(key)
    return {name: value for name, value in zip(_IDENTITY, values, strict=True) if value is not None}


def process_uses(utilization: float, processes: Iterable[Any]) -> dict[str, list[float]]:
    """Per process identity of one card sample: [GPU memory GB, share of the
    card's utilisation]. The share splits the card's utilisation by memory,
    or evenly where the driver hides memory (as service_use._shares)."""
    listed = [p for p in processes if isinstance(p, Mapping)]
    memory = [float(p.get("MemoryUsedGB") or 0.0) for p in listed]
    total = sum(memory)
    uses: dict[str, list[float]] = {}
    for process, used in zip(listed, memory, strict=True):
        share = used / total if total > 0 else 1 / len(listed)
        entry = uses.setdefault(process_key(process), [0.0, 0.0])
        entry[0] += used
        entry[1] += utilization * share
    return uses


def _fold(rollup: Any, values: tuple[float | None, ...], processes: Any) -> None:
    """Adds one sample (its metric values in METRICS order) to `rollup`."""
    rollup.samples += 1
    for (_, prefix), value in zip(METRICS, values, strict=True):
        if value is not None:
            setattr(rollup, f"{prefix}_sum", getattr(rollup, f"{prefix}_sum") + float(value))
            setattr(rollup, f"{prefix}_n", getattr(rollup, f"{prefix}_n") + 1)
    if rollup.card_id is not None and isinstance(processes, list) and processes:
        # the card's utilisation, split over its processes (None counts as 0,
        # as the monitors read it)
        utilization = float(values[3] or 0.0)
        for key, (memory, share) in process_uses(utilization, processes).items():
            entry = rollup.processes.setdefault(key, [0.0, 0.0])
            entry[0] += memory
            entry[1] += share


def add(node_id: int, rows: list[ResourceSample]) -> None:
    """Adds freshly stored samples of one node to their minutes. Runs in the
    transaction that stores them, which holds the node's row lock: no other
    writer changes these minutes meanwhile."""
    if not rows:
        return
    minutes = {minute_of(row.taken_at) for row in rows}
    existing = {
        (rollup.card_id, rollup.start_s): rollup
        for rollup in SampleRollup.objects.filter(node_id=node_id, start_s__in=minutes)
    }
    created, changed = [], []
    for row in rows:
        key = (row.card_id, minute_of(row.taken_at))
        rollup = existing.get(key)
        if rollup is None:
            rollup = existing[key] = SampleRollup(
                node_id=node_id, card_id=key[0], start_s=key[1], processes={}
            )
            created.append(rollup)
        elif rollup.pk is not None and rollup not in changed:
            changed.append(rollup)
        values = tuple(getattr(row, column) for column in SAMPLE_FIELDS)
        _fold(rollup, values, row.processes)
    SampleRollup.objects.bulk_create(created)
    if changed:
        SampleRollup.objects.bulk_update(changed, ROLLUP_FIELDS)


def rebuild(
    start_s: int,
    end_s: int,
    *,
    sample_model: type[Model] = ResourceSample,
    rollup_model: type[Model] = SampleRollup,
) -> int:
    """Recomputes every minute that overlaps [start_s, end_s) from the
    samples stored now (after a merge, a prune, or to backfill: the
    migration passes its historical models), a few hours at a time to bound
    memory. Returns the rollup rows written."""
    first = start_s // ROLLUP_S * ROLLUP_S
    last = math.ceil(end_s / ROLLUP_S) * ROLLUP_S
    written = 0
    step = 6 * 3600
    for span in range(first, last, step):
        end = min(span + step, last)
        rollup_model._default_manager.filter(start_s__gte=span, start_s__lt=end).delete()
        built: dict[tuple[int, int | None, int], Any] = {}
        rows = (
            sample_model._default_manager.filter(
                taken_at__gte=at_second(span), taken_at__lt=at_second(end)
            )
            .order_by()
            .values_list("node_id", "card_id", "taken_at", *SAMPLE_FIELDS, "processes")
        )
        for node_id, card_id, taken_at, *values, processes in rows.iterator(chunk_size=5000):
            key = (node_id, card_id, minute_of(taken_at))
            rollup = built.get(key)
            if rollup is None:
                rollup = built[key] = rollup_model(
                    node_id=node_id, card_id=card_id, start_s=key[2], processes={}
                )
            _fold(rollup, tuple(values), processes)
        rollup_model._default_manager.bulk_create(built.values(), batch_size=2000)
        written += len(built)
    return written


def prune(before: datetime) -> None:
    """After samples older than `before` were deleted: drop the minutes
    before it and rebuild the one it cuts."""
    minute = minute_of(before)
    SampleRollup.objects.filter(start_s__lt=minute).delete()
    rebuild(minute, minute + ROLLUP_S)


# --- reading a window -------------------------------------------------------


@dataclass
class Window:
    """What trends and per-service monitors need of [since, now): the
    rollup minutes wholly inside it and the raw samples of the partial
    minute it starts in."""

    # (node_id, card_id, start_s, samples, cpu_sum, cpu_n, …, processes)
    minutes: list[tuple[Any, ...]]
    # (node_id, card_id, taken_at, cpu, memory, disk, xpu, xpu_memory, processes)
    head: list[tuple[Any, ...]]


def read_window(node_ids: list[int], since: datetime, processes: bool = True) -> Window:
    """The window's rows; without `processes` (trends only) the GPU
    processes are not read (decoding them is most of the time spent)."""
    whole = first_whole_minute(since)
    extra = ("processes",) if processes else ()
    # a node row's processes are always empty: not decoded at all
    card_processes = Case(
        When(card__isnull=False, then=F("processes")), default=None, output_field=JSONField()
    )
    minutes = (
        SampleRollup.objects.filter(node_id__in=node_ids, start_s__gte=whole)
        .annotate(card_processes=card_processes)
        .values_list(
            "node_id",
            "card_id",
            "start_s",
            "samples",
            *SUM_FIELDS,
            *(("card_processes",) if processes else ()),
        )
    )
    head = ResourceSample.objects.filter(
        node_id__in=node_ids, taken_at__gte=since, taken_at__lt=at_second(whole)
    ).values_list("node_id", "card_id", "taken_at", *SAMPLE_FIELDS, *extra)
    return Window(minutes=list(minutes.order_by()), head=list(head.order_by()))


Points = dict[tuple[int, int | None], list[tuple[int, tuple[float | None, ...]]]]


def trend_points(window: Window, width_ms: int) -> Points:
    """Per series, (bucket start ms, mean of each metric or None) — what
    actions._trend_points computes from the raw samples."""
    sums: dict[tuple[int, int | None], dict[int, list[float]]] = {}
    for row in window.minutes:
        buckets = sums.setdefault((row[0], row[1]), {})
        bucket = row[2] * 1000 // width_ms * width_ms
        acc = buckets.get(bucket)
        if acc is None:  # one minute per bucket (the default): taken as it is
            buckets[bucket] = list(row[4:14])
        else:
            for i in range(10):
                acc[i] += row[4 + i]
    for row in window.head:
        bucket = int(row[2].timestamp() * 1000 // width_ms) * width_ms
        acc = sums.setdefault((row[0], row[1]), {}).setdefault(bucket, [0.0] * 10)
        for i in range(5):
            value = row[3 + i]
            if value is not None:
                acc[2 * i] += value
                acc[2 * i + 1] += 1
    points: Points = {}
    for series, buckets in sums.items():
        points[series] = [
            (
                bucket,
                (
                    a[0] / a[1] if a[1] else None,
                    a[2] / a[3] if a[3] else None,
                    a[4] / a[5] if a[5] else None,
                    a[6] / a[7] if a[7] else None,
                    a[8] / a[9] if a[9] else None,
                ),
            )
            for bucket, a in buckets.items()
        ]
    return points
