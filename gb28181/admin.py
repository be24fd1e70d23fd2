from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from gb28181.models import Channel, Device


class ReadOnlyMixin:
    """Rows come from the devices themselves (run_gb28181); deleting one is
    allowed (a decommissioned camera), editing is not."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ChannelInline(ReadOnlyMixin, admin.TabularInline):
    model = Channel
    extra = 0
    fields = ("channel_id", "name", "status", "manufacturer", "model", "parent_id", "updated_at")
    readonly_fields = fields
    show_change_link = True


@admin.register(Device)
class DeviceAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = (
        "device_id",
        "name",
        "address",
        "transport",
        "online",
        "last_keepalive_at",
        "registered_until",
        "manufacturer",
        "model",
        "channel_count",
    )
    list_filter = ("online", "transport", "manufacturer")
    search_fields = ("device_id", "name", "host", "manufacturer", "model")
    inlines = [ChannelInline]

    @admin.display(description=_("channels"))
    def channel_count(self, obj: Device) -> int:
        return obj.channels.count()


@admin.register(Channel)
class ChannelAdmin(ReadOnlyMixin, SimpleHistoryAdmin):
    list_display = ("channel_id", "name", "device", "status", "manufacturer", "model", "task_url")
    list_filter = ("status", "device")
    search_fields = ("channel_id", "name", "device__device_id")

    @admin.display(description=_("task URL"))
    def task_url(self, obj: Channel) -> str:
        return obj.url
