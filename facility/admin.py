from __future__ import annotations

import csv

from django.contrib import admin, messages
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from facility.models import AuditRecord, PlatformClient, PlatformRegistration


@admin.register(PlatformClient)
class PlatformClientAdmin(admin.ModelAdmin):
    list_display = ("name", "scope", "token_hint", "rate_per_minute", "last_used_at", "revoked_at")
    list_filter = ("scope",)
    readonly_fields = ("token_hint", "created_at", "last_used_at", "revoked_at")
    fields = (
        "name",
        "user",
        "scope",
        "rate_per_minute",
        "token_hint",
        "created_at",
        "last_used_at",
        "revoked_at",
    )
    search_fields = ("name",)
    actions = ["rotate", "revoke"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        # a token is shown once: create clients with `manage.py create_platform_client`
        return False

    @admin.action(description=_("Revoke the selected credentials"))
    def revoke(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(
            request, _("%(count)d credential(s) revoked") % {"count": count}, messages.SUCCESS
        )

    @admin.action(description=_("Rotate: give the selected clients new tokens (shown once)"))
    def rotate(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        for client in queryset:
            token = PlatformClient.new_token()
            client.set_token(token)
            client.revoked_at = None
            client.save()
            self.message_user(
                request,
                _("%(client)s: new token %(token)s — copy it now, it is not shown again")
                % {"client": client.name, "token": token},
                messages.WARNING,
            )


@admin.register(AuditRecord)
class AuditRecordAdmin(admin.ModelAdmin):
    list_display = ("at", "client", "method", "path", "status", "code", "request_id", "message")
    list_filter = ("method", "status", "client")
    search_fields = ("path", "request_id", "client", "message")
    date_hierarchy = "at"
    actions = ["export_csv"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False

    @admin.action(description=_("Export the selected records as CSV"))
    def export_csv(self, request, queryset) -> HttpResponse:  # type: ignore[no-untyped-def]
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="audit.csv"'
        fields = [
            "at",
            "client",
            "method",
            "path",
            "status",
            "code",
            "message",
            "request_id",
            "remote_addr",
            "duration_ms",
        ]
        writer = csv.writer(response)
        writer.writerow(fields)
        for record in queryset.order_by("at", "id"):
            writer.writerow([getattr(record, field) for field in fields])
        return response


@admin.register(PlatformRegistration)
class PlatformRegistrationAdmin(admin.ModelAdmin):
    list_display = (
        "platform_url",
        "registered",
        "registered_at",
        "last_heartbeat_at",
        "last_attempt_at",
        "last_error",
    )
    readonly_fields = [f.name for f in PlatformRegistration._meta.fields]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
