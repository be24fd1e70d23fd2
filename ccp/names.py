"""Kubernetes object names (DNS-1123), checked the same way on every backend."""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# label keys: optional DNS subdomain prefix + "/" + name; values: 63 chars
_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

# A workload's pods are named <workload>-<5 characters>; a pod name is a
# DNS-1123 label (63), so a workload name is at most 57 characters.
MAX_WORKLOAD_NAME = 57


def label_problem(value: str, max_length: int = 63) -> str:
    """'' when `value` is a DNS-1123 label, else what is wrong with it."""
    if not value:
        return _("must not be empty")
    if len(value) > max_length:
        return _("at most %(max)d characters") % {"max": max_length}
    if not _LABEL.match(value):
        return _(
            "must be a DNS-1123 label: lower-case letters, digits and '-', "
            "starting and ending with a letter or digit"
        )
    return ""


def subdomain_problem(value: str) -> str:
    if not value:
        return _("must not be empty")
    if len(value) > 253:
        return _("at most %(max)d characters") % {"max": 253}
    if not _SUBDOMAIN.match(value):
        return _("must be a DNS-1123 subdomain: lower-case letters, digits, '-' and '.'")
    return ""


def label_key_problem(key: str) -> str:
    prefix, _slash, name = key.rpartition("/")
    if prefix and subdomain_problem(prefix):
        return _("label key prefix %(prefix)s %(problem)s") % {
            "prefix": repr(prefix),
            "problem": subdomain_problem(prefix),
        }
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return _(
            "label key %(key)s: at most 63 characters of letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit"
        ) % {"key": repr(key)}
    return ""


def label_value_problem(value: str) -> str:
    if len(value) > 63 or not _LABEL_NAME.match(value):
        return _(
            "label value %(value)s: at most 63 characters of letters, digits, '-', '_' and "
            "'.', starting and ending with a letter or digit"
        ) % {"value": repr(value)}
    return ""
