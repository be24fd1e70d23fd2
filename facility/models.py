from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

TOKEN_PREFIX = "fac_"  # noqa: S105 - a prefix, not a secret


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ClientScope(models.TextChoices):
    FULL = "full", "full: the platform"
    READ = "read", "read-only: auditors, dashboards"


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
    scope = models.CharField(max_length=8, choices=ClientScope.choices, default=ClientScope.FULL)
    rate_per_minute = models.PositiveIntegerField(
        default=0, help_text="requests a minute this client may make (0: the default)"
    )

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


class AuditRecord(models.Model):
    """One mutating call to the facility's interfaces: who, when, which URI,
    the request ID and the outcome (beside the per-model history)."""

    at = models.DateTimeField(default=timezone.now, db_index=True)
    client = models.CharField(max_length=150, blank=True, db_index=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=512, db_index=True)
    request_id = models.CharField(max_length=128, blank=True, db_index=True)
    status = models.PositiveSmallIntegerField()
    code = models.CharField(max_length=16, blank=True)
    message = models.CharField(max_length=512, blank=True)
    remote_addr = models.CharField(max_length=64, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit record"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.client} {self.method} {self.path} {self.status}"


class PlatformRegistration(models.Model):
    """The facility's registration with its platform (§7.1.1 a, §7.2.3):
    one row, kept by the registration loop."""

    platform_url = models.CharField(max_length=1024)
    registered = models.BooleanField(default=False)
    registered_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat_at = models.DateTimeField(null=True, blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=512, blank=True)
    platform_answer = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "platform registration"

    def __str__(self) -> str:
        return f"{self.platform_url}: {'registered' if self.registered else 'not registered'}"


class Heartbeat(models.Model):
    """Last sign of life of each background process (loops, workers), for
    the readiness check and the metrics."""

    name = models.CharField(max_length=64, primary_key=True)
    at = models.DateTimeField()
    detail = models.CharField(max_length=256, blank=True)

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
