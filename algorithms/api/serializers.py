"""Bodies of 表I.1–I.8 (CAP) and 表B.1 (CAD), in the tables' spellings."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from algorithms.choices import ExecKind
from algorithms.models import AlgoFilePackage
from facility.api.fields import EnumField, text
from facility.api.serializers import ContractSerializer, PageRequestSerializer
from facility.errors import Invalid
from facility.netpolicy import check_url_literal

_HEX = set("0123456789abcdefABCDEF")


def check_md5(value: str) -> str:
    if value and (len(value) != 32 or not set(value) <= _HEX):
        raise serializers.ValidationError(_("must be 32 hexadecimal digits"))
    return value.lower()


def check_url(value: str) -> str:
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme not in ("http", "https") or len(value) <= len(scheme) + 3:
        raise serializers.ValidationError(_("must be an http:// or https:// URL"))
    try:
        check_url_literal(value, "Url")
    except Invalid as error:
        raise serializers.ValidationError(error.message) from None
    return value


class PackageIDMixin(serializers.Serializer):
    def validate_AlgoFilePackageID(self, value: str) -> str:
        from algorithms.actions import PACKAGE_ID_HELP, PACKAGE_ID_RULE

        if not PACKAGE_ID_RULE.match(value):
            raise serializers.ValidationError(PACKAGE_ID_HELP)
        return value


class AlgoFilePackagePushRequest(PackageIDMixin, ContractSerializer):
    """表I.1"""

    aliases = {"ID": "AlgoFilePackageID"}
    AlgoFilePackageID = text(40)
    MD5 = text(32, required=False, default="")
    Url = text(1024)
    Name = text(128, required=False, default="")

    def validate_MD5(self, value: str) -> str:
        return check_md5(value)

    def validate_Url(self, value: str) -> str:
        return check_url(value)


class AlgoFilePackageRequest(PackageIDMixin, ContractSerializer):
    """表B.1 (CAD)"""

    aliases = {"ID": "AlgoFilePackageID"}
    Url = text(1024)
    AlgoFilePackageID = text(40)
    AuthAddress = text(1024, required=False, default="")
    LicenseFile = text(1024, required=False, default="")

    def validate_Url(self, value: str) -> str:
        return check_url(value)


class AlgoFilePackageExecFilePushRequest(PackageIDMixin, ContractSerializer):
    """表I.8"""

    aliases = {"ID": "AlgoFilePackageID"}
    Type = EnumField([ExecKind.IMAGE.value, ExecKind.ARTIFACT.value])
    MD5 = text(32)
    Name = text(128, required=False, default="")
    Url = text(1024)
    AlgoFilePackageID = text(40)

    def validate_MD5(self, value: str) -> str:
        return check_md5(value)

    def validate_Url(self, value: str) -> str:
        return check_url(value)


class AlgoFilePackageSearchRequest(PageRequestSerializer):
    """表I.3"""

    Name = text(128, required=False, default="")


class AlgoFilePackagePushResult(serializers.Serializer):
    """Data of 表I.2"""

    AlgoFilePackageID = serializers.CharField(max_length=40)


class AlgoFilePackageSearchRecord(serializers.Serializer):
    """表I.5"""

    AlgoFilePackageID = serializers.CharField(source="package_id", max_length=40)
    Name = serializers.CharField(source="display_name", max_length=128)
    Version = serializers.CharField(source="version", max_length=20)
    Author = serializers.CharField(source="author", max_length=20)
    Description = serializers.CharField(source="description", max_length=1024)
    Status = serializers.IntegerField(source="status", help_text="0–4, see 表I.5")


class CapacitiesOut(serializers.Serializer):
    Stream_Video_Quota = serializers.IntegerField()
    Stream_Capture_Quota = serializers.IntegerField()
    Analyze_Quota = serializers.IntegerField()


class XpuRequirementOut(serializers.Serializer):
    Quota = serializers.FloatField()
    Limit = serializers.FloatField()
    Vendor = serializers.CharField()
    Accelerator = serializers.CharField()
    Capacities = CapacitiesOut()
    Resolution = serializers.CharField()


class EnvVarOut(serializers.Serializer):
    Name = serializers.CharField()
    Value = serializers.CharField()


class BinOut(serializers.Serializer):
    Type = serializers.CharField(help_text="image or artifact")
    RemoteUri = serializers.CharField()
    LocalUri = serializers.CharField()


class AlgoRuntimeOut(serializers.Serializer):
    Cmd = serializers.CharField()
    Env = EnvVarOut(many=True)
    Xpu = XpuRequirementOut(many=True)


class AlgoFilePackageDetail(AlgoFilePackageSearchRecord):
    """表I.7, plus two documented extensions: Progress and StatusReason."""

    Tags = serializers.ListField(source="tags", child=serializers.CharField())
    Bin = serializers.SerializerMethodField()
    AlgoRuntime = serializers.SerializerMethodField()
    Progress = serializers.SerializerMethodField(
        help_text="extension: percent of the current download (package, then exec file)"
    )
    StatusReason = serializers.CharField(
        source="status_reason", help_text="extension: why Status is 4"
    )

    @extend_schema_field(BinOut)
    def get_Bin(self, package: AlgoFilePackage) -> dict[str, Any]:
        bin_ = package.bin or {}
        return {
            "Type": bin_.get("Type", ""),
            "RemoteUri": bin_.get("RemoteUri", ""),
            "LocalUri": bin_.get("LocalUri", ""),
        }

    @extend_schema_field(AlgoRuntimeOut)
    def get_AlgoRuntime(self, package: AlgoFilePackage) -> dict[str, Any]:
        runtime = package.runtime or {}
        return {
            "Cmd": runtime.get("Cmd", ""),
            "Env": runtime.get("Env", []),
            "Xpu": runtime.get("Xpu", []),
        }

    @extend_schema_field(serializers.IntegerField(min_value=0, max_value=100))
    def get_Progress(self, package: AlgoFilePackage) -> int:
        from algorithms.choices import TransferState

        if package.transfer_state in TransferState.active():
            return package.progress
        exec_file = package.exec_file_or_none
        if exec_file is not None and exec_file.transfer_state in TransferState.active():
            return exec_file.progress
        return 100 if package.transfer_state == TransferState.DONE else 0
