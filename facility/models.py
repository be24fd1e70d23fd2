from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "fac_"  # noqa: S105 - a prefix, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class PlatformClientQuerySet(models.QuerySet["PlatformClient"]):
    def active(self) -> PlatformClientQuerySet:
        return self.filter(revoked_at__isnull=True, user__is_active=True)

    def by_token(self, token: str) -> PlatformClient | None:
        return self.select_related("user").filter(token_hash=hash_token(token)).first()


class PlatformClient(models.Model):
    """A caller of the /CAD /CCP /CAP interfaces (the platform, a test rig).

    Each client acts as its own Django user, so the model history records
    which client changed what."""

    name = models.CharField(max_length=64, unique=True)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="platform_client"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(
        max_length=16, editable=False, help_text="first characters of the token"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = PlatformClientQuerySet.as_manager()

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def new_token() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    def set_token(self, token: str) -> None:
        self.token_hash = hash_token(token)
        self.token_hint = token[:10]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
