from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from services.models import AlgoService, Replica, ServiceEvent


class ReplicaInline(admin.TabularInline):
    model = Replica
    extra = 0
    can_delete = False
    fields = ("name", "node", "card", "quota", "port", "state", "reason", "restarts", "healthy_at")
    readonly_fields = fields
    show_change_link = True


class ServiceEventInline(admin.TabularInline):
    model = ServiceEvent
    extra = 0
    can_delete = False
    fields = ("at", "replica_name", "kind", "message")
    readonly_fields = fields
    ordering = ("-at",)
    max_num = 0


@admin.register(AlgoService)
class AlgoServiceAdmin(SimpleHistoryAdmin):
    list_display = (
        "service_id",
        "kind",
        "package",
        "status",
        "running_replicas",
        "xpu_type",
        "xpu_quota",
        "runtime",
        "created_at",
        "deleted_at",
    )
    list_filter = ("status", "kind", "runtime", "xpu_type")
    search_fields = ("service_id", "package__package_id", "package__name")
    readonly_fields = (
        "service_id",
        "kind",
        "package",
        "xpu_type",
        "env",
        "args",
        "host_name",
        "runtime",
        "image",
        "xpu_quota",
        "stream_capacity",
        "status",
        "status_reason",
        "deleted_at",
        "created_at",
        "updated_at",
    )
    fields = ("replicas", *readonly_fields)
    inlines = [ReplicaInline, ServiceEventInline]
    actions = ["restart_replicas"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description=_("running"))
    def running_replicas(self, obj: AlgoService) -> str:
        running = obj.replica_set.filter(state="running").count()
        return f"{running}/{obj.replicas}"

    def save_model(self, request, obj: AlgoService, form, change) -> None:  # type: ignore[no-untyped-def]
        from services.actions import scale_service

        if change and "replicas" in form.changed_data:
            wanted = obj.replicas
            obj.replicas = form.initial["replicas"]
            scale_service(obj.service_id, wanted)
            return
        super().save_model(request, obj, form, change)

    def delete_model(self, request, obj: AlgoService) -> None:  # type: ignore[no-untyped-def]
        from services.actions import delete_service

        delete_service(obj.service_id)

    @admin.action(description=_("Restart all replicas of the selected services"))
    def restart_replicas(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        from services.actions import restart_service

        for service in queryset:
            restart_service(service.service_id)
        self.message_user(
            request,
            _("restart queued for %(count)d service(s)") % {"count": queryset.count()},
            messages.SUCCESS,
        )


@admin.register(Replica)
class ReplicaAdmin(SimpleHistoryAdmin):
    list_display = (
        "name",
        "service",
        "node",
        "card",
        "quota",
        "port",
        "state",
        "restarts",
        "healthy_at",
    )
    list_filter = ("state", "runtime", "node")
    search_fields = ("name", "service__service_id")
    readonly_fields = [f.name for f in Replica._meta.fields] + ["engine_url", "recent_logs"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description=_("recent logs"))
    def recent_logs(self, obj: Replica) -> str:
        from services.actions import replica_logs

        return replica_logs(obj, tail=50)


@admin.register(ServiceEvent)
class ServiceEventAdmin(admin.ModelAdmin):
    list_display = ("at", "service", "replica_name", "kind", "message")
    list_filter = ("kind",)
    search_fields = ("service__service_id", "replica_name", "message")

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False
