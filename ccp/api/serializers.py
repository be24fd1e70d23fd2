"""Bodies of 表F.1 and 表G.1–G.22 (/CCP)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from ccp.backends.base import Pod
from ccp.choices import FileType
from ccp.models import Workload
from facility.api.fields import (
    EnumField,
    StrictDictField,
    StrictFloatField,
    StrictIntegerField,
    StrictListField,
    text,
)
from facility.api.serializers import MAX_PAGE_SIZE, ContractSerializer

MAX_REPLICAS = 100


def created_date(value: Any) -> str:
    """yyyy-MM-dd HH:mm:ss.SSS, local time (INTERFACES.md §0)."""
    local = timezone.localtime(value)
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}"


class EngineRequest(ContractSerializer):
    """表F.1"""

    Url = text(1024)
    AuthAddress = text(1024, required=False, default="")
    FileType = EnumField([c.value for c in FileType])
    AlgoFilePackageID = text(40)


class WorkloadCreateRequest(ContractSerializer):
    """表G.1 (plus ClusterCode and Namespace, which the example sends)"""

    aliases = {"NameSpace": "Namespace", "WorkloadName": "Name"}

    ClusterCode = text(256, required=False, default="")
    Namespace = text(63, required=False, default="default")
    Name = text(256)
    Labels = StrictDictField(child=serializers.JSONField())
    LabelSelector = StrictDictField(child=serializers.JSONField())
    Replicas = StrictIntegerField(min_value=0, max_value=MAX_REPLICAS)
    ContainerName = text(256)
    Image = text(256)
    Cpu = StrictIntegerField(min_value=0, max_value=1024)
    XpuType = text(20, required=False, default="")
    Xpu = StrictFloatField(min_value=0, max_value=64)
    Memory = StrictIntegerField(min_value=0, max_value=65536)
    Command = text(1024, required=False, default="")
    Args = text(2048, required=False, default="")


class ApiOrder(ContractSerializer):
    """表G.10"""

    Property = text(64, required=False, default="")
    Direction = EnumField(["asc", "desc"], required=False, default="asc")


class ApiPageRequest(ContractSerializer):
    """表G.9"""

    PageNumber = StrictIntegerField(min_value=1)
    PageSize = StrictIntegerField(min_value=1, max_value=MAX_PAGE_SIZE)
    OrderList = StrictListField(child=ApiOrder(), required=False, default=list, max_length=8)


class ListRequest(ContractSerializer):
    """表G.8"""

    aliases = {"NameSpace": "Namespace", "PageRequest": "PAgeRequest"}

    ClusterCode = text(256)
    Namespace = text(63, required=False, default="default")
    WorkloadName = text(256, required=False, default="")
    PAgeRequest = ApiPageRequest(required=False)


class WorkloadRequest(ContractSerializer):
    """表G.4 and 表G.14 (WorkloadName may come from the URI)"""

    aliases = {"NameSpace": "Namespace"}

    ClusterCode = text(256)
    Namespace = text(63)
    WorkloadName = text(256, required=False, default="")


class WorkloadScaleRequest(WorkloadRequest):
    """表G.6"""

    Replicas = StrictIntegerField(min_value=0, max_value=MAX_REPLICAS)


class PodListRequest(WorkloadRequest):
    """表G.16 (WorkloadName required: the URI does not carry it)"""

    WorkloadName = text(256)


class PodDetailRequest(PodListRequest):
    """表G.21 (PodName may come from the URI)"""

    PodName = text(256, required=False, default="")


# -- answers ---------------------------------------------------------------------------


class WorkloadResult(serializers.Serializer):
    """表G.2 Data"""

    WorkloadName = serializers.CharField(source="name", max_length=256)
    Namespace = serializers.CharField(source="namespace", max_length=256)


class WorkloadInfo(serializers.Serializer):
    """表G.13"""

    Namespace = serializers.CharField(source="namespace", max_length=64)
    WorkloadName = serializers.CharField(source="name", max_length=256)
    Replicas = serializers.IntegerField(source="replicas")
    CreatedDate = serializers.SerializerMethodField()

    def get_CreatedDate(self, workload: Workload) -> str:
        return created_date(workload.created)


class WorkloadDetail(serializers.Serializer):
    """The 表G.15 example's fields, in its order"""

    Namespace = serializers.CharField(source="namespace")
    WorkloadName = serializers.CharField(source="name")
    XpuType = serializers.CharField(source="xpu_type")
    Xpu = serializers.FloatField(source="xpu")
    CpuType = serializers.SerializerMethodField()
    Cpu = serializers.IntegerField(source="cpu")
    Replicas = serializers.IntegerField(source="replicas")
    XpuMemory = serializers.SerializerMethodField(help_text="GB; 0 = not known")
    Memory = serializers.IntegerField(source="memory", help_text="Gi")
    CreatedDate = serializers.SerializerMethodField()
    Status = serializers.SerializerMethodField()
    Image = serializers.CharField(source="image")

    def get_CpuType(self, workload: Workload) -> str:
        import platform

        return platform.machine()

    def get_XpuMemory(self, workload: Workload) -> int:
        return 0

    def get_CreatedDate(self, workload: Workload) -> str:
        return created_date(workload.created)

    def get_Status(self, workload: Workload) -> str:
        return str(self.context.get("status", ""))


class OrderOut(serializers.Serializer):
    Property = serializers.CharField()
    Direction = serializers.CharField()


class PageRequestOut(serializers.Serializer):
    PageNumber = serializers.IntegerField()
    PageSize = serializers.IntegerField()
    OrderList = OrderOut(many=True)


class WorkloadPageData(serializers.Serializer):
    """表G.12 with the example's PAgeRequest echo and TotalSize"""

    PAgeRequest = PageRequestOut()
    PageContent = WorkloadInfo(many=True)
    TotalSize = serializers.IntegerField()


class WorkloadCreateOrListData(serializers.Serializer):
    """Data of POST /CCP/AlgoService/Workloads: 表G.2 WorkloadResult when it
    created, 表G.12 WorkloadPAgeData when it listed."""

    WorkloadName = serializers.CharField(required=False, help_text="表20 (create)")
    Namespace = serializers.CharField(required=False, help_text="表20 (create)")
    PAgeRequest = PageRequestOut(required=False, help_text="表23 (list)")
    PageContent = WorkloadInfo(many=True, required=False, help_text="表23 (list)")
    TotalSize = serializers.IntegerField(required=False, help_text="表23 (list)")


class LabelOut(serializers.Serializer):
    """表G.20"""

    Name = serializers.CharField(max_length=64)
    Value = serializers.CharField(max_length=64)


class PodVO(serializers.Serializer):
    """表G.19"""

    Name = serializers.CharField(max_length=256)
    NodeName = serializers.CharField(max_length=256)
    HostIP = serializers.CharField(max_length=17)
    PodIP = serializers.CharField(max_length=17)
    Port = serializers.IntegerField()
    Status = serializers.CharField(max_length=64, help_text="Kubernetes pod phase")
    StatusDesc = serializers.CharField(max_length=256)
    Image = serializers.CharField(max_length=256)
    Restarts = serializers.IntegerField()
    Age = serializers.IntegerField(help_text="seconds")
    Ready = serializers.BooleanField()
    DeploymentName = serializers.CharField(max_length=256)
    Labels = LabelOut(many=True)


class PodList(serializers.Serializer):
    """表G.18 ClusterPodListResult"""

    Pods = PodVO(many=True)


def pod_vo(pod: Pod) -> dict[str, Any]:
    return {
        "Name": pod.name,
        "NodeName": pod.node_name,
        "HostIP": pod.host_ip,
        "PodIP": pod.pod_ip,
        "Port": pod.port,
        "Status": pod.phase,
        "StatusDesc": pod.status_desc,
        "Image": pod.image,
        "Restarts": pod.restarts,
        "Age": pod.age_s,
        "Ready": pod.ready,
        "DeploymentName": pod.deployment,
        "Labels": [{"Name": k, "Value": v} for k, v in sorted(pod.labels.items())],
    }
