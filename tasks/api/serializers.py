"""Bodies of 表K.1–K.9 (CAP tasks; the CAD's 表D.x are the same)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from facility.api.fields import (
    EnumField,
    StrictBooleanField,
    StrictCharField,
    StrictDictField,
    StrictFloatField,
    StrictListField,
    text,
)
from facility.api.serializers import ContractSerializer, PageRequestSerializer
from tasks.choices import RestartPolicy, TaskStatus
from tasks.models import AlgoTask

STREAM_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "file", "gb28181")


@extend_schema_field({"oneOf": [{"type": "string", "maxLength": 64}, {"type": "integer"}]})
class FlexibleIdField(serializers.Field):
    """AreaID is a number in the examples and a string elsewhere: keep either."""

    default_error_messages = {"invalid": gettext_lazy("must be a string or an integer")}

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, bool) or not isinstance(data, (str, int)):
            self.fail("invalid")
        if isinstance(data, str) and len(data) > 64:
            raise serializers.ValidationError(_("at most %(max)d characters") % {"max": 64})
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class PointSerializer(ContractSerializer):
    PointX = StrictFloatField(min_value=0.0, max_value=1.0)
    PointY = StrictFloatField(min_value=0.0, max_value=1.0)


class AreaSerializer(ContractSerializer):
    AreaID = FlexibleIdField(required=False, default="")
    AreaType = EnumField(["POLYGON", "RECTANGLE", "LINE"], required=False, default="POLYGON")
    Points = PointSerializer(many=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        minimum = {"POLYGON": 3, "RECTANGLE": 2, "LINE": 2}[attrs["AreaType"]]
        if len(attrs["Points"]) < minimum:
            raise serializers.ValidationError(
                {
                    "Points": [
                        _("a %(type)s needs at least %(min)d points")
                        % {"type": attrs["AreaType"], "min": minimum}
                    ]
                }
            )
        return attrs


class ExtendParamsSerializer(ContractSerializer):
    """Known keys are typed; others pass through to the engine."""

    Sensitivity = serializers.JSONField(required=False)
    DurationThreshold = StrictFloatField(required=False, min_value=0, max_value=86400)
    RepeatAlarmIntervalThreshold = StrictFloatField(required=False, min_value=0, max_value=86400)

    def to_internal_value(self, data: Any) -> Any:
        known = super().to_internal_value(data)
        extra = {k: v for k, v in data.items() if k not in self.fields}
        return {**extra, **known}


def check_receive_url(value: str) -> None:
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    if scheme in ("viid", "viids"):  # a GA/T 1400 view library (docs/gat1400.md)
        from tasks.sinks.gat1400 import library_for

        try:
            library_for(value)
        except ValueError as error:
            raise serializers.ValidationError(
                _("GA/T 1400 view library URL %(error)s") % {"error": error}
            )
        return
    if scheme not in ("http", "https"):
        raise serializers.ValidationError(_("must be an http:// or https:// URL"))


class RuleParamsSerializer(ContractSerializer):
    Areas = AreaSerializer(many=True, required=False, default=list)
    ResultReceiveUrl = StrictListField(
        child=StrictCharField(max_length=1024, validators=[check_receive_url]),
        required=False,
        default=list,
        max_length=16,
    )
    EventID = text(64, required=False, default="")
    ExtendParams = ExtendParamsSerializer(required=False, default=dict)
    Labels = StrictDictField(required=False, default=dict)
    Masks = AreaSerializer(many=True, required=False, default=list)


class VideoStreamOptionsSerializer(ContractSerializer):
    Url = text(1024)
    Resolution = text(32, required=False, default="")

    def validate_Url(self, value: str) -> str:
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in STREAM_SCHEMES:
            raise serializers.ValidationError(
                _("must be a stream URL (%(schemes)s)")
                % {"schemes": ", ".join(s + "://" for s in STREAM_SCHEMES)}
            )
        return value


class StreamOptionsSerializer(ContractSerializer):
    VideoStreamOptions = VideoStreamOptionsSerializer()


class TaskLabelsSerializer(ContractSerializer):
    AlgoCaBinName = text(128, required=False, default="")
    Version = text(20, required=False, default="")


class AlgoTaskInfoSerializer(ContractSerializer):
    """表K.2 (ID is ignored on input)."""

    Labels = TaskLabelsSerializer(required=False, default=dict)
    RulesParams = RuleParamsSerializer(many=True, allow_empty=False, max_length=32)  # type: ignore[call-arg]
    StreamOptions = StreamOptionsSerializer()


class AlgoTaskCreateRequest(ContractSerializer):
    """表K.1"""

    RestartPolicy = EnumField([RestartPolicy.NEVER.value, RestartPolicy.ALWAYS.value])
    TaskInfo = AlgoTaskInfoSerializer()
    CreateAndStartTask = StrictBooleanField(required=False, default=True)
    AlgoServiceID = text(128, required=False, default="")


class AlgoTaskUpdateRequest(ContractSerializer):
    """表K.5"""

    RestartPolicy = EnumField([RestartPolicy.NEVER.value, RestartPolicy.ALWAYS.value])
    TaskInfo = AlgoTaskInfoSerializer()
    AlgoServiceID = text(128, required=False, default="")


class AlgoTaskSearchRequest(PageRequestSerializer):
    """表K.7"""

    EventID = text(64, required=False, default="")
    RestartPolicy = EnumField(
        [RestartPolicy.NEVER.value, RestartPolicy.ALWAYS.value], required=False
    )
    CreateAndStartTask = StrictBooleanField(required=False, allow_null=True, default=None)
    Status = EnumField([s.value for s in TaskStatus], required=False)


class TaskInfoOut(serializers.Serializer):
    Labels = serializers.DictField()
    RulesParams = serializers.ListField(child=serializers.DictField())
    StreamOptions = serializers.DictField()
    ID = serializers.CharField(max_length=128)


class AlgoTaskInfoResult(serializers.Serializer):
    """表K.4, plus the documented extensions Reason and Stats."""

    TaskInfo = serializers.SerializerMethodField()
    AlgoServiceID = serializers.SerializerMethodField()
    Status = serializers.CharField(source="status")
    RestartPolicy = serializers.CharField(source="restart_policy")
    CreateAndStartTask = serializers.BooleanField(source="create_and_start")
    Quota = serializers.IntegerField(source="quota")
    Reason = serializers.CharField(source="reason", help_text="extension: why not RUNNING")
    Stats = serializers.DictField(source="stats", help_text="extension: engine statistics")

    @extend_schema_field(TaskInfoOut)
    def get_TaskInfo(self, task: AlgoTask) -> dict[str, Any]:
        return {**task.task_info, "ID": task.task_id}

    @extend_schema_field(serializers.CharField(allow_blank=True))
    def get_AlgoServiceID(self, task: AlgoTask) -> str:
        return task.service_id or ""
