"""Base serializer of the contract: tolerant of the examples' key spellings,
strict about types and lengths; and the paging shapes of `…:search`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.settings import api_settings

from facility.api.fields import StrictIntegerField

MAX_PAGE_SIZE = 1000


def _squash(key: str) -> str:
    return key.strip().replace("_", "").replace("-", "").replace(" ", "").lower()


_LIST_MESSAGES: dict[str, Any] = {
    "required": _("is required"),
    "null": _("must not be null"),
    "not_a_list": _("must be a list"),
    "empty": _("must not be empty"),
    "max_length": _("at most {max_length} items"),
    "min_length": _("at least {min_length} items"),
}


class ContractListSerializer(serializers.ListSerializer):
    default_error_messages = _LIST_MESSAGES


class ContractSerializer(serializers.Serializer):
    """Reads request bodies the way the standard's examples write them.

    Keys are matched exactly first, then through `aliases`, then ignoring
    case, underscores and stray spaces: `"MD5 "`, `remote_uri`, `NameSpace`
    and `HOStIP` all find their field. Unknown keys are ignored."""

    aliases: ClassVar[dict[str, str]] = {}

    class Meta:
        list_serializer_class = ContractListSerializer

    default_error_messages = {
        "invalid": _("must be a JSON object"),
        "required": _("is required"),
        "null": _("must not be null"),
    }

    def normalise_keys(self, data: Mapping[str, Any]) -> dict[str, Any]:
        fields = {name for name, field in self.fields.items() if not field.read_only}
        squashed = {_squash(name): name for name in fields}
        aliases = {_squash(alias): name for alias, name in self.aliases.items()}
        result: dict[str, Any] = {}
        exact: set[str] = set()
        for key, value in data.items():
            if not isinstance(key, str):
                continue
            if key in fields:
                result[key] = value
                exact.add(key)
                continue
            target = aliases.get(_squash(key)) or squashed.get(_squash(key))
            if target is not None and target not in exact:
                result[target] = value
        return result

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, Mapping):
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [self.error_messages["invalid"]]},
                code="invalid",
            )
        return super().to_internal_value(self.normalise_keys(data))


class PageRequestSerializer(ContractSerializer):
    PageNumber = StrictIntegerField(required=False, default=1, min_value=1)
    PageSize = StrictIntegerField(required=False, default=20, min_value=1, max_value=MAX_PAGE_SIZE)


def page_of(
    queryset: QuerySet[Any],
    page_number: int,
    page_size: int,
    record: type[serializers.Serializer],
    total: int | None = None,
) -> dict[str, Any]:
    """One page of `queryset`; `total` when the caller counts it a cheaper
    way than queryset.count()."""
    if total is None:
        total = queryset.count()
    start = (page_number - 1) * page_size
    rows = queryset[start : start + page_size]
    return {
        "PageNumber": page_number,
        "PageSize": page_size,
        "TotalSize": total,
        "Records": record(rows, many=True).data,
    }


def paged_response_serializer(name: str, record: type[serializers.Serializer]) -> type:
    """The `Data` of a `…:search` answer, for the schema."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "PageNumber": serializers.IntegerField(),
            "PageSize": serializers.IntegerField(),
            "TotalSize": serializers.IntegerField(),
            "Records": record(many=True),
        },
    )
