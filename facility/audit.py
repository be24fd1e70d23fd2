"""Read-only admin pages over every audited model's history, including
objects that have since been deleted (the per-object History button of
SimpleHistoryAdmin cannot reach those)."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest

CHANGE_KINDS = {"+": "created", "~": "changed", "-": "deleted"}


class HistoryAuditAdmin(admin.ModelAdmin):
    date_hierarchy = "history_date"
    list_filter = ("history_type", "history_user")
    list_per_page = 100

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        return (
            "history_date",
            "change",
            "history_object_label",
            "who",
            "history_request_id",
            "history_change_reason",
        )

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        pk = self.model._meta.pk
        assert pk is not None
        return ("history_request_id", "history_user__username", pk.attname)

    @admin.display(description="change", ordering="history_type")
    def change(self, obj: Any) -> str:
        return CHANGE_KINDS.get(obj.history_type, obj.history_type)

    @admin.display(description="object")
    def history_object_label(self, obj: Any) -> str:
        return str(obj.instance)

    @admin.display(description="who", ordering="history_user")
    def who(self, obj: Any) -> str:
        return obj.history_user.username if obj.history_user else "background worker"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def register_history_admins(site: admin.AdminSite) -> None:
    for model in apps.get_models():
        if not hasattr(model, "history_request_id") or not hasattr(model, "history_type"):
            continue
        if model in site._registry:
            continue
        site.register(model, HistoryAuditAdmin)
