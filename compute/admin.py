from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from compute.models import Cluster, Node, XpuCard


class NodeInline(admin.TabularInline):
    model = Node
    extra = 0
    fields = ("name", "ip", "cpu_arch", "cpu_cores", "memory_gb", "disk_gb", "last_seen_at")
    readonly_fields = ("last_seen_at",)
    show_change_link = True


@admin.register(Cluster)
class ClusterAdmin(SimpleHistoryAdmin):
    list_display = ("code", "name", "node_count", "created_at")
    search_fields = ("code", "name")
    inlines = [NodeInline]

    @admin.display(description=_("nodes"))
    def node_count(self, obj: Cluster) -> int:
        return obj.nodes.count()


class XpuCardInline(admin.TabularInline):
    model = XpuCard
    extra = 0
    fields = ("index", "xpu_type", "memory_gb", "uuid", "is_present")


@admin.register(Node)
class NodeAdmin(SimpleHistoryAdmin):
    list_display = (
        "pk",
        "name",
        "cluster",
        "ip",
        "cpu_arch",
        "cpu_cores",
        "memory_gb",
        "disk_gb",
        "card_count",
        "online_badge",
        "last_seen_at",
        "is_local",
    )
    list_display_links = ("pk", "name")
    list_filter = ("cluster", "cpu_arch", "is_local")
    search_fields = ("name", "hostname", "ip")
    readonly_fields = ("is_local", "last_seen_at", "xpu_note", "created_at")
    fields = (
        "cluster",
        "name",
        "hostname",
        "ip",
        "cpu_arch",
        "os",
        "cpu_cores",
        "memory_gb",
        "disk_gb",
        "agent_client",
        "xpu_note",
        "is_local",
        "last_seen_at",
        "created_at",
    )
    inlines = [XpuCardInline]

    @admin.display(description=_("cards"))
    def card_count(self, obj: Node) -> int:
        return obj.cards.count()

    @admin.display(description=_("online"))
    def online_badge(self, obj: Node) -> str:
        if obj.is_online:
            return format_html('<span style="color:#2e7d32">{}</span>', "online")
        return format_html('<span style="color:#c62828">{}</span>', "offline")


@admin.register(XpuCard)
class XpuCardAdmin(SimpleHistoryAdmin):
    list_display = ("node", "index", "xpu_type", "memory_gb", "uuid", "is_present")
    list_filter = ("xpu_type", "is_present")
    search_fields = ("node__name", "uuid", "xpu_type")
