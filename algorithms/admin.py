from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from algorithms.models import AlgoFilePackage, ExecFile


def _size(value: int | None) -> str:
    if value is None:
        return "–"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(value)


class ExecFileInline(admin.StackedInline):
    model = ExecFile
    extra = 0
    can_delete = False
    fields = (
        "kind",
        "url",
        "md5",
        "actual_md5",
        "transfer_state",
        "progress_display",
        "transfer_error",
        "path",
    )
    readonly_fields = fields

    @admin.display(description=_("progress"))
    def progress_display(self, obj: ExecFile) -> str:
        return f"{obj.progress} %"


@admin.register(AlgoFilePackage)
class AlgoFilePackageAdmin(SimpleHistoryAdmin):
    list_display = (
        "package_id",
        "display_name",
        "version",
        "status_badge",
        "progress_display",
        "size_display",
        "actual_md5",
        "source",
        "created_at",
    )
    list_filter = ("status", "transfer_state", "source", "has_run")
    search_fields = ("package_id", "name", "requested_name", "author", "url", "actual_md5")
    readonly_fields = (
        "package_id",
        "status",
        "status_reason",
        "transfer_state",
        "generation",
        "attempts",
        "progress_display",
        "bytes_done",
        "bytes_total",
        "actual_md5",
        "heartbeat_at",
        "transfer_error",
        "transfer_finished_at",
        "name",
        "version",
        "author",
        "description",
        "tags",
        "bin",
        "runtime",
        "unpacked_bytes",
        "content_dir",
        "has_run",
        "created_at",
        "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("package_id", "status", "status_reason", "requested_name", "source")}),
        (
            _("Download"),
            {
                "fields": (
                    "url",
                    "md5",
                    "transfer_state",
                    "progress_display",
                    "bytes_done",
                    "bytes_total",
                    "actual_md5",
                    "attempts",
                    "generation",
                    "heartbeat_at",
                    "transfer_error",
                    "transfer_finished_at",
                )
            },
        ),
        (
            _("algo.yaml"),
            {
                "fields": (
                    "name",
                    "version",
                    "author",
                    "description",
                    "tags",
                    "bin",
                    "runtime",
                    "unpacked_bytes",
                    "content_dir",
                )
            },
        ),
        (_("Licence (CAD 表2)"), {"fields": ("auth_address", "license_file")}),
        (_("Times"), {"fields": ("has_run", "created_at", "updated_at")}),
    )
    inlines = [ExecFileInline]
    history_list_display = ("status", "transfer_state", "history_request_id")

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        # packages enter through the push interfaces, which fetch and check them
        return False

    @admin.display(description=_("status"), ordering="status")
    def status_badge(self, obj: AlgoFilePackage) -> str:
        colour = {0: "#777", 1: "#b8860b", 2: "#2e7d32", 3: "#1565c0", 4: "#c62828"}[obj.status]
        return format_html(
            '<span style="color:{}" title="{}">{} {}</span>',
            colour,
            obj.status_reason,
            obj.status,
            obj.get_status_display(),
        )

    @admin.display(description=_("progress"))
    def progress_display(self, obj: AlgoFilePackage) -> str:
        return f"{obj.progress} %"

    @admin.display(description=_("size"), ordering="bytes_total")
    def size_display(self, obj: AlgoFilePackage) -> str:
        return _size(obj.bytes_total)

    def delete_model(self, request, obj: AlgoFilePackage) -> None:  # type: ignore[no-untyped-def]
        from algorithms.actions import delete_package

        delete_package(obj.package_id)

    def delete_queryset(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        from algorithms.actions import delete_package

        for package_id in list(queryset.values_list("package_id", flat=True)):
            delete_package(package_id)


@admin.register(ExecFile)
class ExecFileAdmin(SimpleHistoryAdmin):
    list_display = ("package", "kind", "transfer_state", "actual_md5", "created_at")
    list_filter = ("kind", "transfer_state")
    search_fields = ("package__package_id", "url", "md5")
    readonly_fields = [f.name for f in ExecFile._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
