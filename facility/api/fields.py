"""Serializer fields with the standard's rules and messages a person can act on.

DRF's stock fields coerce quietly (a number becomes a string, "1" an integer);
the standard gives every field a type, so these refuse the wrong JSON type and
say which type was expected.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

_COMMON = {
    "required": _("is required"),
    "null": _("must not be null"),
}


class StrictCharField(serializers.CharField):
    default_error_messages = {
        **_COMMON,
        "invalid": _("must be a string"),
        "blank": _("must not be empty"),
        "max_length": _("at most {max_length} characters"),
        "min_length": _("at least {min_length} characters"),
    }

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    default_error_messages = {
        **_COMMON,
        "invalid": _("must be an integer"),
        "max_value": _("must be at most {max_value}"),
        "min_value": _("must be at least {min_value}"),
        "max_string_length": _("number is too long"),
    }

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictFloatField(serializers.FloatField):
    default_error_messages = {
        **_COMMON,
        "invalid": _("must be a number"),
        "max_value": _("must be at most {max_value}"),
        "min_value": _("must be at least {min_value}"),
    }

    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {**_COMMON, "invalid": _("must be true or false")}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class EnumField(serializers.ChoiceField):
    """A string enum; matches case-insensitively (the standard's examples
    write `Image` where the table says `image`) and yields the canonical form."""

    default_error_messages = {
        **_COMMON,
        "invalid_choice": _("must be one of: {choices}"),
        "invalid": _("must be a string"),
    }

    def __init__(self, choices: Iterable[str], **kwargs: Any) -> None:
        values = list(choices)
        self._canonical = {value.lower(): value for value in values}
        super().__init__(choices=values, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        canonical = self._canonical.get(data.strip().lower())
        if canonical is None:
            self.fail("invalid_choice", choices=", ".join(self._canonical.values()))
        return canonical  # type: ignore[return-value]


def text(max_length: int, *, required: bool = True, **kwargs: Any) -> StrictCharField:
    """A string column of the standard: required-ness and maximum length."""
    kwargs.setdefault("allow_blank", not required)
    return StrictCharField(max_length=max_length, required=required, **kwargs)


class StrictListField(serializers.ListField):
    default_error_messages = {
        **_COMMON,
        "not_a_list": _("must be a list"),
        "empty": _("must not be empty"),
        "max_length": _("at most {max_length} items"),
        "min_length": _("at least {min_length} items"),
    }


class StrictDictField(serializers.DictField):
    default_error_messages = {**_COMMON, "not_a_dict": _("must be a JSON object")}
