"""Data the dashboard tests draw: two nodes in one cluster, an hour of
samples with recognisable values, a card and a service holding part of it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone

from compute import actions
from compute.models import Node
from services.choices import ReplicaState
from tests.compute.helpers import card, make_node, reading


def fill() -> dict[str, Any]:
    first = make_node("gpu-node-1", cluster="dash", cpu_cores=16, memory_gb=64, disk_gb=1000)
    second = make_node("cpu-node-2", cluster="dash", ip="127.0.0.3", cpu_cores=8)
    now = timezone.now()
    for minutes in range(60, -1, -2):
        at = now - timedelta(minutes=minutes)
        wave = (minutes % 20) / 20
        actions.record_reading(
            first,
            reading(
                cpu=0.2 + 0.6 * wave,
                memory=20 + 20 * wave,
                disk=400,
                cards=[card(0, utilization=wave, used=2 + 10 * wave)],
            ),
            taken_at=at,
            period_s=10,
        )
        actions.record_reading(
            second, reading(cpu=0.1, memory=4, disk=100), taken_at=at, period_s=10
        )
    # the newest sample: values the page must show
    actions.record_reading(
        first,
        reading(cpu=0.42, memory=33.3, disk=444, cards=[card(0, utilization=0.77, used=5.5)]),
        taken_at=now + timedelta(seconds=1),
        period_s=10,
    )
    make_quota(first)
    return {"gpu": first, "cpu": second}


def make_quota(node: Node) -> None:
    from algorithms.models import AlgoFilePackage
    from services.models import AlgoService, Replica

    package = AlgoFilePackage.objects.create(package_id="pkg-dash", url="http://127.0.0.1:9/p")
    service = AlgoService.objects.create(
        service_id="svc-dashboard-1",
        package=package,
        replicas=2,
        xpu_type="NVIDIA_T4",
        runtime="local",
    )
    for index, quota in ((0, 0.25), (1, 0.5)):
        Replica.objects.create(
            service=service,
            index=index,
            name=f"svc-dashboard-1-{index}",
            node=node,
            card=node.cards.get(),
            quota=quota,
            port=21000 + index,
            runtime="local",
            handle_ref="",
            state=ReplicaState.RUNNING,
        )


def staff_user(client: Any, staff: bool = True) -> Any:
    user = get_user_model().objects.create_user(
        username="operator" if staff else "visitor", password="pw-123456", is_staff=staff
    )
    client.force_login(user)
    return user
