from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import Avg
from django.test import Client

from compute import actions, jobs
from compute.models import Cluster, Node, ResourceSample
from tests.compute.fake_pynvml import FakeCard
from tests.compute.helpers import card, make_node, reading

pytestmark = pytest.mark.usefixtures("compute_settings")


def test_local_node_registers_once_in_the_configured_cluster(settings) -> None:
    settings.FACILITY_CLUSTER_CODE = "site-a"
    first = actions.ensure_local_node()
    assert actions.ensure_local_node().pk == first.pk
    assert first.cluster.code == "site-a" and first.is_local
    assert first.cpu_cores > 0 and first.memory_gb > 0 and first.disk_gb > 0
    assert Node.objects.count() == 1 and Node.history.count() == 1


def test_sampler_skips_when_a_fresh_sample_exists() -> None:
    assert jobs.sample_local_node() is True
    assert jobs.sample_local_node() is False
    assert jobs.sample_local_node(force=True) is True
    assert ResourceSample.objects.count() == 2


def test_sampler_records_cards_and_processes(fake_gpus) -> None:
    fake_gpus(FakeCard(compute_processes=[(4321, 1024**3)]))
    jobs.sample_local_node(force=True)
    node = Node.objects.get(is_local=True)
    assert node.xpu_note == ""
    sample = ResourceSample.objects.get(card__isnull=False)
    assert sample.card.xpu_type == "NVIDIA_T4"
    assert sample.processes == [{"Pid": 4321, "MemoryUsedGB": 1.0}]


def test_a_card_that_disappears_leaves_the_monitors_but_keeps_its_samples(api) -> None:
    node = make_node()
    actions.record_reading(node, reading(cards=[card(0), card(1)]))
    actions.record_reading(node, reading(cards=[card(0)]))
    assert list(node.cards.filter(is_present=True).values_list("index", flat=True)) == [0]
    assert ResourceSample.objects.filter(card__index=1).count() == 1
    data = api.post(f"/CCP/Node/Monitors/{node.pk}", {}).body["Data"]
    assert len(data["XpuMonitors"]) == 1
    actions.record_reading(node, reading(cards=[card(0), card(1)]))
    assert node.cards.filter(is_present=True).count() == 2


def test_without_nvml_the_node_says_why_it_has_no_cards() -> None:
    jobs.sample_local_node(force=True)
    assert "NVML unavailable" in Node.objects.get(is_local=True).xpu_note


def test_run_sampler_stores_samples_at_its_cadence() -> None:
    call_command("run_sampler", "--interval", "0.05", "--count", "3")
    assert ResourceSample.objects.filter(card__isnull=True).count() == 3


def test_old_samples_are_downsampled_then_pruned(settings) -> None:
    settings.FACILITY_SAMPLE_DOWNSAMPLE_AFTER_S = 86400
    settings.FACILITY_SAMPLE_DOWNSAMPLE_BUCKET_S = 300
    settings.FACILITY_SAMPLE_RETENTION_S = 7 * 86400
    node = make_node()
    now = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
    two_days_ago = datetime(2026, 1, 8, 12, 0, tzinfo=UTC)
    for second in range(0, 600, 10):  # ten minutes at 10 s: two buckets
        at = two_days_ago + timedelta(seconds=second)
        actions.record_reading(node, reading(cpu=second / 1000, cards=[card()]), at, 10)
    expected = [
        ResourceSample.objects.filter(
            card__isnull=True, taken_at__gte=start, taken_at__lt=start + timedelta(minutes=5)
        ).aggregate(v=Avg("cpu_utilization"))["v"]
        for start in (two_days_ago, two_days_ago + timedelta(minutes=5))
    ]
    recent = now - timedelta(hours=1)
    actions.record_reading(node, reading(), recent, 10)
    ancient = now - timedelta(days=8)
    actions.record_reading(node, reading(), ancient, 10)

    result = actions.downsample_and_prune(now)

    assert result["pruned"] == 1
    merged = ResourceSample.objects.filter(period_s=300, card__isnull=True).order_by("taken_at")
    assert [row.taken_at for row in merged] == [two_days_ago, two_days_ago + timedelta(minutes=5)]
    assert [row.cpu_utilization for row in merged] == pytest.approx(expected)
    assert ResourceSample.objects.filter(period_s=300, card__isnull=False).count() == 2
    assert ResourceSample.objects.filter(taken_at=recent, period_s=10).count() == 1
    # a second run finds nothing left to do
    count = ResourceSample.objects.count()
    assert actions.downsample_and_prune(now) == {"pruned": 0, "merged_into": 0}
    assert ResourceSample.objects.count() == count


def test_history_records_who_changed_nodes(api) -> None:
    created = api.post("/api/compute/nodes", {"Name": "edge-1", "Cpu": 2})
    node = Node.objects.get(pk=created.body["Data"]["ID"])
    record = node.history.get()
    assert record.history_type == "+" and record.history_user.username == "platform:test"
    assert record.history_request_id
    assert Cluster.history.filter(code="cluster-1").exists()


def test_admin_pages_list_clusters_nodes_and_cards() -> None:
    admin = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    node = make_node()
    actions.record_reading(node, reading(cards=[card()]))
    browser = Client()
    browser.force_login(admin)
    for path in (
        "/admin/compute/cluster/",
        "/admin/compute/node/",
        "/admin/compute/xpucard/",
        f"/admin/compute/node/{node.pk}/change/",
        f"/admin/compute/node/{node.pk}/history/",
    ):
        assert browser.get(path).status_code == 200, path
