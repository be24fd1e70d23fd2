"""Where replicas go (DESIGN.md §6): nodes whose cards match the XpuType and
have free quota; binpack on cards (fill a started card before a fresh one),
spread across nodes (the node with fewest replicas of this service first).
CPU services (XpuType CPU) need no card."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Sum
from django.utils.translation import gettext

from compute.models import Node, XpuCard
from facility.errors import Invalid
from services.choices import CPU_XPU_TYPE, ReplicaState
from services.models import Replica

EPSILON = 1e-9


def same_xpu_type(a: str, b: str) -> bool:
    """`NVIDIA A2`, `nvidia_a2` and `NVIDIA-A2` name the same card type."""
    return norm_xpu_type(a) == norm_xpu_type(b)


def norm_xpu_type(value: str) -> str:
    return re.sub(r"[\s_-]+", "_", value.strip().upper())


@dataclass(frozen=True)
class Slot:
    node: Node
    card: XpuCard | None
    quota: float


class NoCapacity(Invalid):
    """No node can take a replica; the message says which resource is missing."""


def card_usage() -> dict[int, float]:
    rows = (
        Replica.objects.filter(state__in=ReplicaState.live(), card__isnull=False)
        .values("card_id")
        .annotate(used=Sum("quota"))
    )
    return {row["card_id"]: row["used"] or 0.0 for row in rows}


def candidate_nodes(host_name: str) -> list[Node]:
    nodes = list(Node.objects.prefetch_related("cards").order_by("id"))
    if host_name:
        nodes = [n for n in nodes if host_name in (n.ip, n.hostname, n.name)]
    return nodes


def place(
    *,
    count: int,
    xpu_type: str,
    quota: float,
    host_name: str = "",
    service_replicas_per_node: dict[int, int] | None = None,
) -> list[Slot]:
    """Choose `count` slots or raise NoCapacity naming what is missing.
    Nothing is reserved here: the caller creates the replicas in the same
    transaction."""
    nodes = candidate_nodes(host_name)
    if host_name and not nodes:
        raise Invalid(
            gettext("no node with address or name %(host)s") % {"host": host_name}, field="HostName"
        )
    per_node: dict[int, int] = defaultdict(int, service_replicas_per_node or {})
    slots: list[Slot] = []
    if same_xpu_type(xpu_type, CPU_XPU_TYPE):
        if not nodes:
            raise NoCapacity(gettext("no compute node is registered"), field="XpuType")
        for _ in range(count):
            node = min(nodes, key=lambda n: (per_node[n.id], n.id))
            per_node[node.id] += 1
            slots.append(Slot(node=node, card=None, quota=0.0))
        return slots

    used = card_usage()
    cards = [
        card
        for node in nodes
        for card in node.cards.all()
        if card.is_present and same_xpu_type(card.xpu_type, xpu_type)
    ]
    if not cards:
        known = sorted({c.xpu_type for n in nodes for c in n.cards.all()}) or ["none"]
        message = (
            gettext("no %(type)s card on %(host)s; cards present: %(known)s")
            if host_name
            else gettext("no %(type)s card; cards present: %(known)s")
        )
        raise NoCapacity(
            message % {"type": xpu_type, "host": host_name, "known": ", ".join(known)},
            field="XpuType",
        )
    for _ in range(count):
        fitting = [c for c in cards if 1.0 - used.get(c.id, 0.0) + EPSILON >= quota]
        if not fitting:
            free = sum(max(0.0, 1.0 - used.get(c.id, 0.0)) for c in cards)
            raise NoCapacity(
                gettext(
                    "not enough free %(type)s quota: %(count)d replica(s) × %(quota)s card "
                    "needed, %(placed)d placed; %(free).2f card free in pieces too small"
                )
                % {
                    "type": xpu_type,
                    "count": count,
                    "quota": quota,
                    "placed": len(slots),
                    "free": free,
                },
                field="Replicas",
            )
        # spread over nodes first, then binpack: the fullest card that still fits
        card = min(
            fitting,
            key=lambda c: (per_node[c.node_id], -used.get(c.id, 0.0), c.node_id, c.index),
        )
        used[card.id] = used.get(card.id, 0.0) + quota
        per_node[card.node_id] += 1
        slots.append(Slot(node=card.node, card=card, quota=quota))
    return slots
