from __future__ import annotations

from django.contrib import admin, messages
from django.utils import timezone

from facility.models import PlatformClient


@admin.register(PlatformClient)
class PlatformClientAdmin(admin.ModelAdmin):
    list_display = ("name", "token_hint", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("token_hint", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "user", "token_hint", "created_at", "last_used_at", "revoked_at")
    search_fields = ("name",)
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        # tokens are shown once, by `manage.py create_platform_client`
        return False

    @admin.action(description="Revoke the selected credentials")
    def revoke(self, request, queryset) -> None:  # type: ignore[no-untyped-def]
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"{count} credential(s) revoked", messages.SUCCESS)
