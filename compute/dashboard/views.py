"""GET /dashboard/compute/[?range=hour|day] — staff only (the admin's login).
Its texts follow the request's language (LocaleMiddleware), like the admin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from compute import actions
from compute.actions import ClusterStatus, NodeStatus, TrendWindow
from compute.dashboard.charts import Chart, svg_chart
from compute.models import Cluster

RANGES = {
    "hour": (gettext_lazy("last hour"), TrendWindow(3600, 60)),
    "day": (gettext_lazy("last day"), TrendWindow(86400, 96)),
}


@dataclass
class Panel:
    """One cluster or node: its heading and its charts."""

    title: str
    subtitle: str
    online: bool | None
    charts: list[Chart] = field(default_factory=list)


def _gb(value: float) -> str:
    return f"{value:.1f} GB"


def _charts(
    status: NodeStatus | ClusterStatus,
    cores: int,
    memory_gb: float,
    disk_gb: float,
    span: tuple[int, int],
) -> list[Chart]:
    start, end = span
    charts = [
        Chart(
            _("CPU (%(cores)s cores)") % {"cores": cores},
            f"{100 * status.cpu_utilization:.1f} %",
            svg_chart(
                status.cpu_utilization_trend,
                start_ms=start,
                end_ms=end,
                y_max=100,
                unit="%",
                scale=100,
            ),
        ),
        Chart(
            _("memory (%(gb)s GB)") % {"gb": f"{memory_gb:.0f}"},
            _gb(status.memory_used_gb),
            svg_chart(
                status.memory_used_trend, start_ms=start, end_ms=end, y_max=memory_gb, unit="G"
            ),
        ),
        Chart(
            _("disk (%(gb)s GB)") % {"gb": f"{disk_gb:.0f}"},
            _gb(status.disk_used_gb),
            svg_chart(status.disk_used_trend, start_ms=start, end_ms=end, y_max=disk_gb, unit="G"),
        ),
    ]
    for card in status.cards:
        where = f"{card.card.node.name} " if isinstance(status, ClusterStatus) else ""
        label = where + _("card %(index)s %(type)s") % {
            "index": card.card.index,
            "type": card.card.xpu_type,
        }
        charts.append(
            Chart(
                _("%(card)s utilisation") % {"card": label},
                f"{100 * card.utilization:.1f} %",
                svg_chart(
                    card.utilization_trend,
                    start_ms=start,
                    end_ms=end,
                    y_max=100,
                    unit="%",
                    scale=100,
                ),
            )
        )
        charts.append(
            Chart(
                _("%(card)s memory (%(gb)s GB)")
                % {"card": label, "gb": f"{card.card.memory_gb:.0f}"},
                _gb(card.memory_used_gb),
                svg_chart(
                    card.memory_used_trend,
                    start_ms=start,
                    end_ms=end,
                    y_max=card.card.memory_gb,
                    unit="G",
                ),
            )
        )
    return charts


def quota_table() -> list[dict[str, Any]]:
    """Which services hold which card quota: live replicas grouped by node,
    card and service."""
    from services.choices import ReplicaState
    from services.models import Replica

    rows = (
        Replica.objects.filter(state__in=ReplicaState.live())
        .values(
            "node__name",
            "card__index",
            "card__xpu_type",
            "service_id",
            "service__package_id",
        )
        .annotate(quota=Sum("quota"), replicas=Count("pk"))
        .order_by("node__name", "card__index", "service_id")
    )
    return [
        {
            "node": row["node__name"],
            "card": (
                f"#{row['card__index']} {row['card__xpu_type']}"
                if row["card__index"] is not None
                else _("— (CPU)")
            ),
            "service": row["service_id"],
            "package": row["service__package_id"],
            "replicas": row["replicas"],
            "quota": f"{row['quota'] or 0:.2f}",
        }
        for row in rows
    ]


@staff_member_required
def compute_dashboard(request: HttpRequest) -> HttpResponse:
    range_key = request.GET.get("range", "hour")
    if range_key not in RANGES:
        range_key = "hour"
    range_label, window = RANGES[range_key]
    actions.ensure_local_node()
    now_ms = int(timezone.now().timestamp() * 1000)
    span = (now_ms - int(window.seconds * 1000), now_ms)
    clusters = []
    for cluster in Cluster.objects.order_by("code"):
        status = actions.cluster_status(cluster, monitors=False, window=window)
        cluster_panel = Panel(
            _("cluster %(code)s") % {"code": cluster.code},
            # no plural forms: Chinese has none, and "1 nodes" reads as a count
            _("%(name)s · %(count)s nodes") % {"name": cluster.name, "count": len(status.nodes)},
            None,
            _charts(status, status.cpu_cores, status.memory_gb, status.disk_gb, span),
        )
        node_panels = [
            Panel(
                _("node %(name)s") % {"name": node.node.name},
                _("ID %(id)s · %(address)s · %(os)s · %(count)s cards")
                % {
                    "id": node.node.pk,
                    "address": node.node.ip or node.node.hostname,
                    "os": node.node.os,
                    "count": len(node.cards),
                }
                + (f" ({node.node.xpu_note})" if node.node.xpu_note else ""),
                node.is_online,
                _charts(node, node.node.cpu_cores, node.node.memory_gb, node.node.disk_gb, span),
            )
            for node in status.nodes
        ]
        clusters.append({"panel": cluster_panel, "nodes": node_panels})
    context = {
        "title": _("Compute"),
        "range_key": range_key,
        "range_label": range_label,
        "ranges": [(key, label) for key, (label, _window) in RANGES.items()],
        "clusters": clusters,
        "quotas": quota_table(),
    }
    return render(request, "compute/dashboard.html", context)
