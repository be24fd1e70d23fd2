"""Bodies of 表J.1–J.8 (CAP services) and 表C.1–C.5 (CAD machine packages)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from algorithms.api.serializers import PackageIDMixin
from facility.api.fields import EnumField, StrictIntegerField, text
from facility.api.serializers import ContractSerializer, PageRequestSerializer
from services.models import AlgoService


class EnvItem(ContractSerializer):
    Name = text(128)
    Value = text(1024, required=False, default="")


class AlgoServiceCreateRequest(PackageIDMixin, ContractSerializer):
    """表J.1"""

    Env = EnvItem(many=True, required=False, default=list)
    Replicas = StrictIntegerField(min_value=1, max_value=64)
    XpuType = text(20)
    AlgoFilePackageID = text(40)
    HostName = text(50, required=False, default="")


class AlgoServiceSearchRequest(PageRequestSerializer):
    """表J.3"""

    AlgoFilePackageID = text(40, required=False, default="")
    XpuType = text(20, required=False, default="")


class AlgoServiceCreateResult(serializers.Serializer):
    AlgoServiceID = serializers.CharField(max_length=128)


class EnvOut(serializers.Serializer):
    Name = serializers.CharField()
    Value = serializers.CharField()


class AlgoServiceRecord(serializers.Serializer):
    """表J.5"""

    Env = serializers.SerializerMethodField()
    Replicas = serializers.IntegerField(source="replicas")
    XpuType = serializers.CharField(source="xpu_type")
    AlgoFilePackageID = serializers.CharField(source="package_id")
    AlgoServiceID = serializers.CharField(source="service_id")

    @extend_schema_field(EnvOut(many=True))
    def get_Env(self, service: AlgoService) -> list[dict[str, str]]:
        return [{"Name": i["Name"], "Value": i.get("Value", "")} for i in service.env]


class ReplicaDetailOut(serializers.Serializer):
    """表J.8"""

    NodeHost = serializers.CharField()
    NodeIpv4 = serializers.CharField()


class AlgoServiceDetail(AlgoServiceRecord):
    """表J.7, plus the documented extension StatusReason."""

    Status = serializers.CharField(source="status")
    XpuQuota = serializers.FloatField(source="xpu_quota")
    ReplicasDetail = serializers.SerializerMethodField()
    StatusReason = serializers.CharField(source="status_reason")

    @extend_schema_field(ReplicaDetailOut(many=True))
    def get_ReplicasDetail(self, service: AlgoService) -> list[dict[str, str]]:
        return [
            {"NodeHost": r.node.hostname or r.node.name, "NodeIpv4": r.node.ip}
            for r in service.replica_set.select_related("node").exclude(state="stopped")
        ]


class AlgoPackageInstallOrListRequest(ContractSerializer):
    """表C.1 install (with AlgoFilePackageID) or 表C.2 list (without)."""

    aliases = {"ID": "AlgoFilePackageID"}
    AlgoFilePackageID = text(40, required=False, default="")
    Args = text(1024, required=False, default="")
    Status = EnumField(["RUNNING", "STOPPED"], required=False)


class MachineAlgoPackage(serializers.Serializer):
    """表C.4"""

    AlgoPackageName = serializers.CharField(max_length=128)
    AlgoPackageType = serializers.CharField(max_length=20, help_text="BIN or ENGINE")
    AlgoPackageVersion = serializers.CharField(max_length=20)
    AlgoFilePackageID = serializers.CharField(max_length=40)
    Status = serializers.CharField(max_length=20, help_text="RUNNING or STOPPED")
    CreatedDate = serializers.CharField(max_length=32)


def machine_package(package: Any, service: AlgoService | None) -> dict[str, str]:
    from django.utils import timezone

    created = service.created_at if service is not None else package.created_at
    local = timezone.localtime(created)
    return {
        "AlgoPackageName": package.display_name,
        "AlgoPackageType": "ENGINE" if package.bin_type == "image" else "BIN",
        "AlgoPackageVersion": package.version,
        "AlgoFilePackageID": package.package_id,
        "Status": "RUNNING" if service is not None else "STOPPED",
        "CreatedDate": local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}",
    }
