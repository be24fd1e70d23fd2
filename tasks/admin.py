from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from tasks import actions, events, images
from tasks.models import AlgoTask, Delivery, ImageIntake, ImageJob, TaskEvent, ViewLibrary


@admin.register(AlgoTask)
class AlgoTaskAdmin(SimpleHistoryAdmin):
    list_display = (
        "task_id",
        "scope",
        "status",
        "reason",
        "desired_state",
        "restart_policy",
        "algo_name",
        "service",
        "restart_count",
        "created_at",
    )
    list_filter = ("status", "desired_state", "restart_policy", "scope", "create_and_start")
    search_fields = ("task_id", "algo_name", "stream_url", "service__service_id", "reason")
    readonly_fields = [f.name for f in AlgoTask._meta.fields]
    actions = ["pause", "resume"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def delete_model(self, request, obj: AlgoTask) -> None:  # type: ignore[no-untyped-def]
        actions.delete_task(obj.task_id, obj.scope)

    def delete_queryset(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for task in list(queryset):
            actions.delete_task(task.task_id, task.scope)

    @admin.action(description=_("Pause the selected tasks"))
    def pause(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for task in queryset:
            actions.pause_task(task.task_id, task.scope)
        self.message_user(
            request, _("%(count)d task(s) paused") % {"count": queryset.count()}, messages.SUCCESS
        )

    @admin.action(description=_("Resume the selected tasks"))
    def resume(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for task in queryset:
            actions.resume_task(task.task_id, task.scope)
        self.message_user(
            request, _("%(count)d task(s) resumed") % {"count": queryset.count()}, messages.SUCCESS
        )


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ("target", "state", "attempts", "last_status", "last_error", "delivered_at")
    readonly_fields = fields


@admin.register(TaskEvent)
class TaskEventAdmin(admin.ModelAdmin):
    list_display = ("received_at", "event_id", "task_id", "area_id", "service_id", "delivered")
    list_filter = ("event_id",)
    search_fields = ("event_key", "task_id", "service_id")
    date_hierarchy = "received_at"
    readonly_fields = [f.name for f in TaskEvent._meta.fields] + ["snapshot"]
    inlines = [DeliveryInline]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description=_("delivered"))
    def delivered(self, obj: TaskEvent) -> str:
        states = [d.state for d in obj.deliveries.all()]
        return f"{states.count('delivered')}/{len(states)}"

    @admin.display(description=_("snapshot"))
    def snapshot(self, obj: TaskEvent) -> str:
        path = Path(obj.snapshot_path) if obj.snapshot_path else None
        if path is None or not path.exists():
            return "–"
        data = base64.b64encode(path.read_bytes()).decode()
        return format_html('<img src="data:image/jpeg;base64,{}" style="max-width:640px">', data)


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "event",
        "target",
        "state",
        "attempts",
        "last_status",
        "last_error",
        "next_attempt_at",
        "delivered_at",
    )
    list_filter = ("state",)
    search_fields = ("target", "event__event_key", "event__task_id")
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["replay"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.action(description=_("Deliver the selected again (replay)"))
    def replay(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        count = events.replay(list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, _("%(count)d delivery(ies) queued again") % {"count": count}, messages.SUCCESS
        )


@admin.register(ViewLibrary)
class ViewLibraryAdmin(admin.ModelAdmin):
    """GA/T 1400 view libraries and whether the facility is registered with
    them (docs/gat1400.md). The target (credentials) is not shown."""

    list_display = (
        "key",
        "base_url",
        "device_id",
        "registered",
        "registered_at",
        "keepalive_at",
        "last_error",
    )
    list_filter = ("registered",)
    fields = readonly_fields = (
        *list_display,
        "updated_at",
    )
    actions = ["register_now"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.action(description=_("Register with the selected view libraries now"))
    def register_now(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        from tasks.sinks.gat1400 import Client, library_for

        for row in queryset:
            try:
                ok, error = Client(library_for(row.target)).register()
            except ValueError as problem:
                ok, error = False, str(problem)
            level = messages.SUCCESS if ok else messages.ERROR
            outcome = _("registered") if ok else error
            self.message_user(request, f"{row.key}: {outcome}", level)


# --- GA/T 1400 image input (tasks/images.py, docs/gat1400.md "Image input") ----------


class ImageIntakeForm(forms.ModelForm):
    class Meta:
        model = ImageIntake
        fields = (
            "name",
            "enabled",
            "device_ids",
            "algo_name",
            "algo_version",
            "service",
            "rules",
        )

    def clean_rules(self) -> Any:
        """The rules as a task's RulesParams are checked (Areas, ResultReceiveUrl, …)."""
        from tasks.api.serializers import RuleParamsSerializer

        rules = self.cleaned_data.get("rules")
        if not isinstance(rules, list):
            raise forms.ValidationError(_("must be a list of rules (RulesParams)"))
        checked = RuleParamsSerializer(data=rules, many=True)
        if not checked.is_valid():
            raise forms.ValidationError(str(checked.errors))
        return rules

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("algo_name") and not data.get("service"):
            raise forms.ValidationError(_("name the algorithm (AlgoCaBinName) or a service"))
        return data


@admin.register(ImageIntake)
class ImageIntakeAdmin(admin.ModelAdmin):
    """Which algorithm analyses the images view libraries push to /VIID/Images."""

    form = ImageIntakeForm
    list_display = ("name", "enabled", "device_ids", "algo_name", "algo_version", "service")
    list_filter = ("enabled",)


@admin.register(ImageJob)
class ImageJobAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "image_id",
        "device_id",
        "intake",
        "state",
        "reason",
        "attempts",
        "objects_found",
        "events",
        "replica",
    )
    list_filter = ("state", "intake")
    search_fields = ("image_id", "device_id")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ImageJob._meta.fields] + ["picture"]
    actions = ["analyse_again"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.display(description=_("picture"))
    def picture(self, obj: ImageJob) -> str:
        path = Path(obj.path)
        if not path.exists():
            return "–"
        kind = "png" if path.suffix == ".png" else "jpeg"
        data = base64.b64encode(path.read_bytes()).decode()
        return format_html(
            '<img src="data:image/{};base64,{}" style="max-width:640px">', kind, data
        )

    @admin.action(description=_("Analyse the selected images again (failed or waiting)"))
    def analyse_again(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        count = images.retry(list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request, _("%(count)d image(s) queued again") % {"count": count}, messages.SUCCESS
        )
