from __future__ import annotations

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from ccp.models import Engine, Workload


@admin.register(Engine)
class EngineAdmin(SimpleHistoryAdmin):
    list_display = ("package_id", "file_type", "image", "state", "updated_at")
    list_filter = ("state", "file_type")
    search_fields = ("package_id", "image", "url")
    readonly_fields = ("generation", "created_at", "updated_at")


@admin.register(Workload)
class WorkloadAdmin(SimpleHistoryAdmin):
    list_display = ("name", "namespace", "replicas", "image", "backend", "created")
    list_filter = ("namespace", "backend")
    search_fields = ("name", "image")
