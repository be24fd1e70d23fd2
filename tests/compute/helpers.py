from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from compute import actions
from compute.models import Cluster, Node
from compute.probes import CardReading, Reading
from tests.support.examples import EXAMPLES


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


def make_node(name: str = "edge-1", cluster: str = "cluster-1", **fields: Any) -> Node:
    defaults = {"ip": "127.0.0.2", "cpu_cores": 8, "memory_gb": 32.0, "disk_gb": 500.0}
    defaults.update(fields)
    cluster_row, _ = Cluster.objects.get_or_create(code=cluster)
    return Node.objects.create(cluster=cluster_row, name=name, hostname=name, **defaults)


def reading(
    cpu: float = 0.25, memory: float = 8.0, disk: float = 100.0, cards: list | None = None
) -> Reading:
    return Reading(
        cpu_utilization=cpu,
        memory_used_gb=memory,
        disk_used_gb=disk,
        cards=cards if cards is not None else [],
    )


def card(index: int = 0, utilization: float = 0.5, used: float = 4.0) -> CardReading:
    return CardReading(
        index=index,
        uuid=f"GPU-{index}",
        xpu_type="NVIDIA_T4",
        memory_gb=16.0,
        memory_used_gb=used,
        utilization=utilization,
    )


def record(node: Node, at: datetime, **kwargs: Any) -> None:
    actions.record_reading(node, reading(**kwargs), taken_at=at, period_s=10)


def get_with_body(api: Any, path: str, body: Any) -> Any:
    """GET with a JSON body, as the standard's 表E.1 example sends it."""
    response = api.client.generic(
        "GET",
        path,
        json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {api.token}",
    )
    response.body = json.loads(response.content)
    return response
