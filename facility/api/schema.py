"""OpenAPI: every answer documented inside the envelope.

Views declare only the shape of `Data` (with `contract_schema`); this module
wraps it in {Code, Message, Data, RequestID} with the interface's Code type,
and adds the error answers every interface can give.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers

ERROR_STATUSES = {
    400: "invalid input: Message names the field and the rule",
    401: "no credential, or an unknown or revoked one",
    404: "unknown ID",
    405: "method not allowed on this URI",
    413: "request body too large",
    415: "body is not JSON",
}


class _ErrorDetail(serializers.Serializer):
    Field = serializers.CharField(help_text="the field path, e.g. AlgoRuntime.Xpu[0].Quota")
    Message = serializers.CharField(help_text="the rule it broke")


class _ErrorData(serializers.Serializer):
    Errors = _ErrorDetail(many=True, required=False)


def _code_field(code_type: type) -> serializers.Field:
    if code_type is str:
        return serializers.CharField(help_text='"0" on success, the project Code otherwise')
    return serializers.IntegerField(help_text="0 on success, the project Code otherwise")


@cache
def envelope(
    data: type[serializers.Serializer] | None, code_type: type, name: str, many: bool = False
) -> type:
    """A serializer class for the envelope around `data` (cached by name so
    the schema has one component per shape)."""
    attrs: dict[str, Any] = {
        "Code": _code_field(code_type),
        "Message": serializers.CharField(max_length=1024),
        "RequestID": serializers.CharField(max_length=128),
    }
    if data is not None:
        # error answers carry Data only for validation failures
        attrs["Data"] = data(many=many, required=data is not _ErrorData)
    return type(name, (serializers.Serializer,), attrs)


def error_envelope(code_type: type) -> type:
    suffix = "CodeString" if code_type is str else "CodeInteger"
    return envelope(_ErrorData, code_type, f"ErrorResponse{suffix}")


def contract_schema(
    *,
    response: type[serializers.Serializer] | None,
    name: str,
    code_type: type = int,
    request: type[serializers.Serializer] | None = None,
    summary: str = "",
    extra_errors: dict[int, str] | None = None,
    many: bool = False,
    **kwargs: Any,
) -> Any:
    """extend_schema for a contract view: `response` is the Data serializer
    (None for the standard's EmptyResponse), `name` the response's name in
    the standard (e.g. AlgoFilePackagePushResponse)."""
    responses: dict[int, Any] = {200: envelope(response, code_type, name, many)}
    errors = {**ERROR_STATUSES, **(extra_errors or {})}
    for status, description in errors.items():
        responses[status] = OpenApiResponse(error_envelope(code_type), description=description)
    return extend_schema(request=request, responses=responses, summary=summary, **kwargs)


class ContractAutoSchema(AutoSchema):
    def get_operation_id(self) -> str:
        # the CAD and CAP task URIs share their last segments: name by the whole path
        path = re.sub(r"[{}]", "", self.path).strip("/")
        return re.sub(r"[^A-Za-z0-9]+", "_", path) + "_" + self.method.lower()

    def get_tags(self) -> list[str]:
        path = self.path.strip("/")
        return [path.split("/")[0]] if path else ["facility"]


class PlatformTokenScheme(OpenApiAuthenticationExtension):
    target_class = "facility.api.auth.PlatformTokenAuthentication"
    name = "PlatformToken"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "token from `manage.py create_platform_client`; "
            "`X-API-Key: <token>` works too",
        }
