from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

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

    name = models.CharField(max_length=64, unique=True, verbose_name=_("name"))
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="platform_client",
        verbose_name=_("user"),
    )
    token_hash = models.CharField(
        max_length=64, unique=True, editable=False, verbose_name=_("token hash")
    )
    token_hint = models.CharField(
        max_length=16,
        editable=False,
        help_text=_("first characters of the token"),
        verbose_name=_("token hint"),
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    last_used_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last used at"))
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))
    scope = models.CharField(
        max_length=8, choices=ClientScope.choices, default=ClientScope.FULL, verbose_name=_("scope")
    )
    rate_per_minute = models.PositiveIntegerField(
        default=0,
        help_text=_("requests a minute this client may make (0: the default)"),
        verbose_name=_("rate per minute"),
    )

    objects = PlatformClientQuerySet.as_manager()

    class Meta:
        verbose_name = _("platform client")
        verbose_name_plural = _("platform clients")

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

    at = models.DateTimeField(default=timezone.now, db_index=True, verbose_name=_("at"))
    client = models.CharField(max_length=150, blank=True, db_index=True, verbose_name=_("client"))
    method = models.CharField(max_length=8, verbose_name=_("method"))
    path = models.CharField(max_length=512, db_index=True, verbose_name=_("path"))
    request_id = models.CharField(
        max_length=128, blank=True, db_index=True, verbose_name=_("request id")
    )
    status = models.PositiveSmallIntegerField(verbose_name=_("status"))
    code = models.CharField(max_length=16, blank=True, verbose_name=_("code"))
    message = models.CharField(max_length=512, blank=True, verbose_name=_("message"))
    remote_addr = models.CharField(max_length=64, blank=True, verbose_name=_("remote addr"))
    duration_ms = models.PositiveIntegerField(default=0, verbose_name=_("duration ms"))

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = _("audit record")
        verbose_name_plural = _("audit records")

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.client} {self.method} {self.path} {self.status}"


class PlatformRegistration(models.Model):
    """The facility's registration with its platform (§7.1.1 a, §7.2.3):
    one row, kept by the registration loop."""

    platform_url = models.CharField(max_length=1024, verbose_name=_("platform url"))
    registered = models.BooleanField(default=False, verbose_name=_("registered"))
    registered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("registered at"))
    last_heartbeat_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("last heartbeat at")
    )
    last_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last attempt at"))
    last_error = models.CharField(max_length=512, blank=True, verbose_name=_("last error"))
    platform_answer = models.JSONField(default=dict, blank=True, verbose_name=_("platform answer"))

    class Meta:
        verbose_name = _("platform registration")
        verbose_name_plural = _("platform registrations")

    def __str__(self) -> str:
        return f"{self.platform_url}: {'registered' if self.registered else 'not registered'}"


class Heartbeat(models.Model):
    """Last sign of life of each background process (loops, workers), for
    the readiness check and the metrics."""

    name = models.CharField(max_length=64, primary_key=True, verbose_name=_("name"))
    at = models.DateTimeField(verbose_name=_("at"))
    detail = models.CharField(max_length=256, blank=True, verbose_name=_("detail"))

    class Meta:
        verbose_name = _("heartbeat")
        verbose_name_plural = _("heartbeats")

    def __str__(self) -> str:
        return f"{self.name} at {self.at:%Y-%m-%d %H:%M:%S}"
