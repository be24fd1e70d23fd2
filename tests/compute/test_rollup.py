"""The per-minute rollup (compute/rollup.py): trends and per-service monitors
read from it equal the ones computed from the raw samples, however the
samples arrived (sampler, late, merged by the downsampler, pruned), on SQLite
and PostgreSQL alike.

Values are multiples of 1/8 and GPU memory splits into quarters, so sums are
exact in binary floating point and "equal" can mean equal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from compute import actions, rollup
from compute.models import ROLLUP_S, Node, ResourceSample, SampleRollup
from compute.probes import CardReading, Reading
from compute.service_use import CardInfo, build_index
from tests.compute.helpers import make_node
from tests.compute.test_service_use import make_replica, make_service

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("compute_settings")]

ENGINE = {"Pid": 4242, "Started": 0.0, "MemoryUsedGB": 1.0}
CHILD = {"Pid": 4300, "Parents": [4242], "MemoryUsedGB": 2.0}
STRANGER = {"Pid": 9999, "MemoryUsedGB": 1.0}


def sample(node: Node, at: datetime, step: int) -> None:
    """One reading of a node with two cards; every fifth has no CPU value,
    every seventh card 1 reading hides its processes' memory."""
    hidden = step % 7 == 0
    processes = [
        {**process, "MemoryUsedGB": 0.0 if hidden else process["MemoryUsedGB"]}
        for process in ([ENGINE, CHILD, STRANGER] if step % 3 else [ENGINE])
    ]
    cards = [
        CardReading(0, "GPU-0", "NVIDIA_T4", 16.0, (step % 16) / 2, (step % 8) / 8, processes),
        CardReading(1, "GPU-1", "NVIDIA_T4", 16.0, 1.5, 0.25, [STRANGER] if step % 2 else []),
    ]
    reading = Reading(
        cpu_utilization=None if step % 5 == 0 else (step % 8) / 8,
        memory_used_gb=(step % 32) / 4,
        disk_used_gb=100.0 + step % 4,
        cards=cards,
    )
    actions.record_reading(node, reading, taken_at=at, period_s=10)


def fill(node: Node, now: datetime, minutes: int) -> None:
    """`minutes` of readings up to `now`, three a minute, off the minute's
    edges (5, 25, 45 s), oldest last to show order does not matter."""
    top = rollup.minute_of(now)
    step = 0
    for minute in range(minutes):
        for offset in (5, 25, 45):
            at = datetime.fromtimestamp(top - minute * ROLLUP_S + offset, tz=UTC)
            if at <= now:
                sample(node, at, step)
            step += 1


def raw_and_rollup(node_ids: list[int], since: datetime, width: int) -> tuple[Any, Any]:
    window = rollup.read_window(node_ids, since)
    raw = actions._trend_points(node_ids, width, since)
    rolled = actions._trend_points(node_ids, width, since, window)
    return (
        {series: sorted(points) for series, points in raw.items()},
        {series: sorted(points) for series, points in rolled.items()},
    )


def monitors(node: Node, since: datetime, width: int, window: Any) -> Any:
    cards = {
        card.pk: CardInfo(card.pk, node.pk, card.xpu_type, card.memory_gb)
        for card in node.cards.all()
    }
    index = build_index([node.pk], cards, since, width, window=window)
    assert index is not None
    return index.monitors(cards)


def _series_minute(row: tuple[Any, ...]) -> tuple[int, int, int]:
    return row[0], row[1] or 0, row[2]


@pytest.fixture
def node_with_service() -> Node:
    node = make_node("edge-1")
    node.cards.create(index=0, xpu_type="NVIDIA_T4", memory_gb=16.0)
    node.cards.create(index=1, xpu_type="NVIDIA_T4", memory_gb=16.0)
    make_replica(make_service("svc-a"), node, node.cards.get(index=0), ref="4242:0")
    return node


@pytest.mark.parametrize("points", [60, 30, 12])  # 1-, 2- and 5-minute buckets
def test_trends_and_monitors_from_the_rollup_equal_those_from_raw_samples(
    node_with_service: Node, points: int
) -> None:
    node = node_with_service
    # 20 s into a minute: the window's first minute is cut after its first sample
    now = datetime.fromtimestamp(rollup.minute_of(timezone.now()) + 20, tz=UTC)
    fill(node, now, 90)
    since = now - timedelta(seconds=3600)
    width = actions.TrendWindow(3600, points).width_ms
    assert rollup.covers(width)
    # buckets that cut minutes are read from the raw samples
    assert not rollup.covers(actions.TrendWindow(3600, 7).width_ms)

    raw, rolled = raw_and_rollup([node.pk], since, width)

    assert rolled == raw
    assert len(raw[(node.pk, None)]) in (points, points + 1)  # the partial first bucket
    window = rollup.read_window([node.pk], since)
    assert window.head  # the window's partial first minute came from raw samples
    expected = monitors(node, since, width, None)
    assert expected[0].memory_used_trend and expected[0].utilization_trend
    assert monitors(node, since, width, window) == expected


def test_the_status_interfaces_answer_the_same_from_rollup_and_raw(
    api, node_with_service: Node, settings, monkeypatch
) -> None:
    node = node_with_service
    fill(node, timezone.now(), 70)
    frozen = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: frozen)
    from_rollup = api.post(f"/CCP/Node/Monitors/{node.pk}", {}).body["Data"]
    monkeypatch.setattr(rollup, "covers", lambda width: False)
    from_raw = api.post(f"/CCP/Node/Monitors/{node.pk}", {}).body["Data"]

    assert from_rollup == from_raw
    assert len(from_raw["CpuUtilizationList"]) >= 60
    assert from_raw["AlgoServiceMonitors"][0]["XpuUtilizationList"]


def test_samples_added_one_by_one_equal_a_rebuild_from_scratch(node_with_service: Node) -> None:
    node = node_with_service
    fill(node, timezone.now(), 20)
    fields = ("node_id", "card_id", "start_s", *rollup.ROLLUP_FIELDS)
    incremental = sorted(SampleRollup.objects.values_list(*fields), key=_series_minute)
    assert len(incremental) == 3 * 20  # node + two cards, per minute

    SampleRollup.objects.all().delete()
    first = rollup.minute_of(timezone.now()) - 30 * ROLLUP_S
    assert rollup.rebuild(first, first + 40 * ROLLUP_S) == len(incremental)

    assert sorted(SampleRollup.objects.values_list(*fields), key=_series_minute) == incremental


def test_the_rollup_follows_the_downsampler_and_pruning(node_with_service: Node, settings) -> None:
    settings.FACILITY_SAMPLE_DOWNSAMPLE_AFTER_S = 86400
    settings.FACILITY_SAMPLE_DOWNSAMPLE_BUCKET_S = 300
    settings.FACILITY_SAMPLE_RETENTION_S = 2 * 86400
    node = node_with_service
    now = timezone.now()
    fill(node, now - timedelta(hours=47, minutes=50), 30)  # crosses the retention edge
    fill(node, now - timedelta(hours=25), 60)  # merged into 5-minute means
    fill(node, now, 30)  # stays raw
    before = SampleRollup.objects.count()

    result = actions.downsample_and_prune(now + timedelta(minutes=1))

    assert result["pruned"] > 0 and result["merged_into"] > 0
    assert SampleRollup.objects.count() < before
    # a minute in the rollup for exactly the minutes that still hold samples
    assert {(row.node_id, row.card_id, row.start_s) for row in SampleRollup.objects.all()} == {
        (row.node_id, row.card_id, rollup.minute_of(row.taken_at))
        for row in ResourceSample.objects.all()
    }
    # a two-day window of 1-hour buckets reads merged, raw and pruned spans
    since = now - timedelta(days=2)
    raw, rolled = raw_and_rollup([node.pk], since, 3_600_000)
    # merged samples are means (thirds, fifths): summed in another order
    # they may differ in the last bit, far below the 3–4 digits answered
    assert rolled.keys() == raw.keys()
    for series, points in raw.items():
        assert [ms for ms, _ in rolled[series]] == [ms for ms, _ in points]
        for (_, values), (_, expected) in zip(rolled[series], points, strict=True):
            for value, wanted in zip(values, expected, strict=True):
                assert value == wanted or value == pytest.approx(wanted, rel=1e-12)
    window = rollup.read_window([node.pk], since)
    from_rollup = monitors(node, since, 3_600_000, window)
    expected = monitors(node, since, 3_600_000, None)
    assert from_rollup[0].utilization_trend == expected[0].utilization_trend  # rounded
    assert from_rollup[0].memory_used_trend == expected[0].memory_used_trend
    assert from_rollup == expected
