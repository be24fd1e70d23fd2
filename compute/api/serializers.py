"""Bodies of 表A.1–A.4 (/CAD/Status), 表E.1–E.6 (CCP monitors), 表H.1–H.4
(/CAP/Status) and the node REST API, in the tables' spellings and units
(INTERFACES.md §0): memory and disk in GB (GiB), …Utilization a ratio 0..1,
OpsInfo …Use in percent, trend lists `[{"<ms>": value}, …]` oldest first.

The Data of each answer is built by the functions below from
`compute.actions` status objects; the serializer classes declare its shape
for the schema."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from compute.actions import CardStatus, ClusterStatus, NodeStatus
from compute.choices import CPU_ONLY_XPU_TYPE, CpuArch
from compute.models import Node
from compute.service_use import ServiceMonitor
from facility.api.fields import (
    EnumField,
    StrictFloatField,
    StrictIntegerField,
    text,
)
from facility.api.serializers import ContractSerializer

TREND_HELP = (
    'one single-entry object per point, oldest first: {"<Unix time in ms>": value}; '
    "points average the samples of equal time buckets over the trend window"
)


def trend_field(unit: str) -> serializers.ListField:
    return serializers.ListField(
        child=serializers.DictField(child=serializers.FloatField()),
        help_text=f"{unit}; {TREND_HELP}",
    )


# --- shapes (for the schema) ------------------------------------------------


class XpuMonitorInfo(serializers.Serializer):
    """表A.4, one per accelerator card"""

    XpuMemory = serializers.IntegerField(help_text="GB")
    XpuMemoryUsed = serializers.FloatField(help_text="GB")
    XpuMemoryUsedList = trend_field("GB")
    XpuUtilization = serializers.FloatField(help_text="ratio 0..1")
    XpuUtilizationList = trend_field("ratio 0..1")
    XpuType = serializers.CharField(max_length=20, help_text="e.g. NVIDIA_T4")


class AlgoServiceMonitor(serializers.Serializer):
    """表A.3, one per algorithm service whose live replicas hold one of the
    cards reported or run GPU processes on them"""

    AlgoFilePackageID = serializers.CharField(max_length=40)
    XpuMemory = serializers.IntegerField(
        help_text="GB, total memory of the cards the service uses (as the example carries)"
    )
    XpuMemoryUsed = serializers.FloatField(help_text="GB, GPU memory of the service's processes")
    XpuMemoryUsedList = trend_field("GB")
    XpuUtilization = serializers.FloatField(
        help_text="ratio 0..1: each card's utilisation times the service's share of the "
        "memory the card's processes hold, averaged over the service's cards"
    )
    XpuUtilizationList = trend_field("ratio 0..1")
    XpuType = serializers.CharField(max_length=20, help_text="type of the service's card")


class _Usage(serializers.Serializer):
    Cpu = serializers.IntegerField(help_text="logical cores")
    CpuUtilization = serializers.FloatField(help_text="ratio 0..1")
    CpuUtilizationList = trend_field("ratio 0..1")
    Memory = serializers.IntegerField(help_text="GB")
    MemoryUsed = serializers.FloatField(help_text="GB")
    MemoryUsedList = trend_field("GB")
    Disk = serializers.IntegerField(help_text="GB")
    DiskUsed = serializers.FloatField(help_text="GB")
    DiskUsedList = trend_field("GB")
    XpuMonitors = XpuMonitorInfo(many=True)
    AlgoServiceMonitors = AlgoServiceMonitor(
        many=True, help_text="per algorithm service using the cards reported here"
    )


class DeviceInfo(_Usage):
    """表A.2"""

    DeviceID = serializers.CharField(max_length=20)
    IsOnline = serializers.BooleanField(
        help_text="false when the newest sample is older than FACILITY_NODE_OFFLINE_AFTER_S"
    )
    CpuType = serializers.ChoiceField(choices=CpuArch.values)


class ClusterMonitorInfo(_Usage):
    """表E.3: totals over the cluster's nodes, use over the nodes reporting"""

    ID = serializers.IntegerField()
    ClusterName = serializers.CharField(max_length=64)


class NodeMonitorInfo(_Usage):
    """表E.6, plus the extension IsOnline"""

    ID = serializers.IntegerField(help_text="the NodeID")
    Ip = serializers.CharField(max_length=17)
    CpuType = serializers.ChoiceField(choices=CpuArch.values)
    IsOnline = serializers.BooleanField(help_text="extension, as 表A.2 IsOnline")


class BasicInfo(serializers.Serializer):
    """表H.2"""

    Ip = serializers.CharField(max_length=50)
    HostName = serializers.CharField(max_length=128)
    Cpu = serializers.IntegerField(help_text="logical cores")
    CpuType = serializers.CharField(max_length=10)
    Xpu = serializers.IntegerField(help_text="number of cards")
    XpuType = serializers.CharField(max_length=20, help_text="the first card's type, or CPU")
    Memory = serializers.FloatField(help_text="GB")
    Disk = serializers.FloatField(help_text="GB")
    OS = serializers.CharField(max_length=20)


class XpuUseDetail(serializers.Serializer):
    """表H.4, one per algorithm service with live replicas on the node"""

    AlgoServiceID = serializers.CharField(max_length=128)
    XpuQuota = serializers.FloatField(
        help_text="card share its live replicas on this node hold, summed (1 = a whole card)"
    )


class OpsInfo(serializers.Serializer):
    """表H.3, plus the extension IsOnline"""

    Ip = serializers.CharField(max_length=50)
    HostName = serializers.CharField(max_length=128)
    CpuUse = serializers.FloatField(help_text="percent 0..100")
    XpuUse = serializers.FloatField(help_text="percent 0..100, mean over the node's cards")
    MemoryUse = serializers.FloatField(help_text="percent 0..100")
    DiskUsed = serializers.FloatField(help_text="percent 0..100")
    XpuUseDetails = XpuUseDetail(many=True)
    IsOnline = serializers.BooleanField(help_text="extension, as 表A.2 IsOnline")


class CapStatus(serializers.Serializer):
    """Data of 表H.1: one BasicInfo and one OpsInfo per node"""

    BasicInfo = BasicInfo(many=True)
    OpsInfo = OpsInfo(many=True)


# --- requests -----------------------------------------------------------------


class NodeMonitorRequest(ContractSerializer):
    """表E.4. The URI carries the NodeID, so both fields may be left out;
    when sent they must agree with it."""

    ClusterCode = text(256, required=False, default="")
    NodeID = text(256, required=False, default="")


class CardSampleIn(ContractSerializer):
    Index = StrictIntegerField(min_value=0, max_value=1023)
    Uuid = text(96, required=False, default="")
    XpuType = text(20)
    XpuMemory = StrictFloatField(min_value=0, help_text="GB")
    XpuMemoryUsed = StrictFloatField(min_value=0, help_text="GB")
    XpuUtilization = StrictFloatField(min_value=0, max_value=1, help_text="ratio 0..1")
    Processes = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        default=list,
        max_length=4096,
        help_text='GPU memory per process: [{"Pid": 1234, "MemoryUsedGB": 0.5}]',
    )


class InventoryIn(ContractSerializer):
    HostName = text(128, required=False, default="")
    Ip = text(50, required=False, default="")
    CpuType = EnumField(CpuArch.values, required=False, default=CpuArch.X86.value)
    OS = text(64, required=False, default="")
    Cpu = StrictIntegerField(min_value=0, required=False, default=0)
    Memory = StrictFloatField(min_value=0, required=False, default=0, help_text="GB")
    Disk = StrictFloatField(min_value=0, required=False, default=0, help_text="GB")
    XpuNote = text(256, required=False, default="")


class NodeSampleRequest(ContractSerializer):
    """One reading of a remote node, posted by `manage.py node_agent`."""

    Inventory = InventoryIn(required=False)
    CpuUtilization = StrictFloatField(min_value=0, max_value=1, help_text="ratio 0..1")
    MemoryUsed = StrictFloatField(min_value=0, help_text="GB")
    DiskUsed = StrictFloatField(min_value=0, help_text="GB")
    PeriodS = StrictIntegerField(
        min_value=0, required=False, default=0, help_text="seconds between the agent's samples"
    )
    Cards = CardSampleIn(many=True, required=False, default=list)


class NodeCreateRequest(ContractSerializer):
    Name = text(128, help_text="unique, not all digits; the node agent's --node")
    ClusterCode = text(256, required=False, default="")
    HostName = text(128, required=False, default="")
    Ip = text(50, required=False, default="")
    CpuType = EnumField(CpuArch.values, required=False, default=CpuArch.X86.value)
    OS = text(64, required=False, default="")
    Cpu = StrictIntegerField(min_value=0, required=False, default=0)
    Memory = StrictFloatField(min_value=0, required=False, default=0, help_text="GB")
    Disk = StrictFloatField(min_value=0, required=False, default=0, help_text="GB")
    AgentClient = text(
        64,
        required=False,
        default="",
        help_text="name of the platform credential that alone may post this node's samples",
    )


class CardRecord(serializers.Serializer):
    Index = serializers.IntegerField(source="index")
    Uuid = serializers.CharField(source="uuid")
    XpuType = serializers.CharField(source="xpu_type")
    XpuMemory = serializers.FloatField(source="memory_gb", help_text="GB")
    Present = serializers.BooleanField(
        source="is_present", help_text="false once the node stopped reporting the card"
    )


class NodeRecord(serializers.Serializer):
    """A node of the node REST API."""

    ID = serializers.IntegerField(source="pk", help_text="the NodeID of 表17")
    Name = serializers.CharField(source="name")
    ClusterCode = serializers.CharField(source="cluster.code")
    HostName = serializers.CharField(source="hostname")
    Ip = serializers.CharField(source="ip")
    CpuType = serializers.CharField(source="cpu_arch")
    OS = serializers.CharField(source="os")
    Cpu = serializers.IntegerField(source="cpu_cores")
    Memory = serializers.FloatField(source="memory_gb", help_text="GB")
    Disk = serializers.FloatField(source="disk_gb", help_text="GB")
    IsLocal = serializers.BooleanField(source="is_local")
    IsOnline = serializers.BooleanField(source="is_online")
    LastSeen = serializers.SerializerMethodField(help_text="yyyy-MM-dd HH:mm:ss.SSS, local time")
    XpuNote = serializers.CharField(source="xpu_note", help_text="why the node has no cards")
    AgentClient = serializers.SerializerMethodField()
    Cards = CardRecord(source="cards.all", many=True)

    def get_LastSeen(self, node: Node) -> str:
        return local_time(node.last_seen_at)

    def get_AgentClient(self, node: Node) -> str:
        return node.agent_client.name if node.agent_client_id else ""  # type: ignore[union-attr]


# --- building Data ------------------------------------------------------------


def local_time(moment: Any) -> str:
    if moment is None:
        return ""
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _gb(value: float) -> float:
    return round(value, 3)


def xpu_monitor(card: CardStatus) -> dict[str, Any]:
    return {
        "XpuMemory": round(card.card.memory_gb),
        "XpuMemoryUsed": _gb(card.memory_used_gb),
        "XpuMemoryUsedList": card.memory_used_trend,
        "XpuUtilization": round(card.utilization, 4),
        "XpuUtilizationList": card.utilization_trend,
        "XpuType": card.card.xpu_type,
    }


def algo_service_monitor(monitor: ServiceMonitor) -> dict[str, Any]:
    return {
        "AlgoFilePackageID": monitor.package_id,
        "XpuMemory": round(monitor.memory_gb),
        "XpuMemoryUsed": _gb(monitor.memory_used_gb),
        "XpuMemoryUsedList": monitor.memory_used_trend,
        "XpuUtilization": round(monitor.utilization, 4),
        "XpuUtilizationList": monitor.utilization_trend,
        "XpuType": monitor.xpu_type,
    }


def _usage(status: NodeStatus | ClusterStatus, cores: int, memory: float, disk: float) -> dict:
    cards = status.cards
    return {
        "Cpu": cores,
        "CpuUtilization": round(status.cpu_utilization, 4),
        "CpuUtilizationList": status.cpu_utilization_trend,
        "Memory": round(memory),
        "MemoryUsed": _gb(status.memory_used_gb),
        "MemoryUsedList": status.memory_used_trend,
        "Disk": round(disk),
        "DiskUsed": _gb(status.disk_used_gb),
        "DiskUsedList": status.disk_used_trend,
        "XpuMonitors": [xpu_monitor(card) for card in cards],
        "AlgoServiceMonitors": [algo_service_monitor(m) for m in status.services],
    }


def device_info(status: NodeStatus) -> dict[str, Any]:
    node = status.node
    return {
        "DeviceID": (settings.FACILITY_DEVICE_ID or node.name)[:20],
        "IsOnline": status.is_online,
        **_usage(status, node.cpu_cores, node.memory_gb, node.disk_gb),
        "CpuType": node.cpu_arch,
    }


def cluster_monitor_info(status: ClusterStatus) -> dict[str, Any]:
    return {
        "ID": status.cluster.pk,
        "ClusterName": status.cluster.name or status.cluster.code,
        **_usage(status, status.cpu_cores, status.memory_gb, status.disk_gb),
    }


def node_monitor_info(status: NodeStatus) -> dict[str, Any]:
    node = status.node
    return {
        "ID": node.pk,
        "Ip": node.ip[:17],
        **_usage(status, node.cpu_cores, node.memory_gb, node.disk_gb),
        "CpuType": node.cpu_arch,
        "IsOnline": status.is_online,
    }


def _percent(used: float, total: float) -> float:
    return round(100.0 * used / total, 2) if total else 0.0


def cap_status(statuses: list[NodeStatus]) -> dict[str, Any]:
    basic, ops = [], []
    for status in statuses:
        node = status.node
        cards = status.cards
        basic.append(
            {
                "Ip": node.ip,
                "HostName": node.hostname or node.name,
                "Cpu": node.cpu_cores,
                "CpuType": node.cpu_arch,
                "Xpu": len(cards),
                "XpuType": cards[0].card.xpu_type if cards else CPU_ONLY_XPU_TYPE,
                "Memory": _gb(node.memory_gb),
                "Disk": _gb(node.disk_gb),
                "OS": node.os[:20],
            }
        )
        xpu_use = sum(card.utilization for card in cards) / len(cards) if cards else 0.0
        ops.append(
            {
                "Ip": node.ip,
                "HostName": node.hostname or node.name,
                "CpuUse": round(100.0 * status.cpu_utilization, 2),
                "XpuUse": round(100.0 * xpu_use, 2),
                "MemoryUse": _percent(status.memory_used_gb, node.memory_gb),
                "DiskUsed": _percent(status.disk_used_gb, node.disk_gb),
                "XpuUseDetails": status.xpu_use_details,
                "IsOnline": status.is_online,
            }
        )
    return {"BasicInfo": basic, "OpsInfo": ops}
