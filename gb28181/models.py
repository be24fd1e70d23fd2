"""Cameras (and NVRs) that register with the facility over GB/T 28181 SIP, and
the channels their Catalog lists. Rows are written by `manage.py run_gb28181`;
the admin shows them read-only.

Keepalives only move `last_keepalive_at` (a queryset update, no history row);
registration, going offline and catalog changes are saved with history."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from facility.history import history

twenty_digits = RegexValidator(r"^\d{20}$", "a GB/T 28181 ID has 20 digits")


class Transport(models.TextChoices):
    UDP = "UDP", "UDP"
    TCP = "TCP", "TCP"


class Device(models.Model):
    device_id = models.CharField(
        _("DeviceID"), max_length=20, unique=True, validators=[twenty_digits]
    )
    name = models.CharField(
        max_length=128, blank=True, help_text=_("DeviceName of DeviceInfo"), verbose_name=_("name")
    )
    host = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("where its SIP messages come from"),
        verbose_name=_("host"),
    )
    port = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("port"))
    transport = models.CharField(
        max_length=3, choices=Transport.choices, default=Transport.UDP, verbose_name=_("transport")
    )
    online = models.BooleanField(default=False, verbose_name=_("online"))
    registered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("registered at"))
    registered_until = models.DateTimeField(
        null=True, blank=True, verbose_name=_("registered until")
    )
    last_keepalive_at = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("last keepalive at")
    )
    manufacturer = models.CharField(max_length=128, blank=True, verbose_name=_("manufacturer"))
    model = models.CharField(max_length=128, blank=True, verbose_name=_("model"))
    firmware = models.CharField(max_length=128, blank=True, verbose_name=_("firmware"))
    catalog_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("when its last Catalog response arrived"),
        verbose_name=_("catalog at"),
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))

    history = history()

    class Meta:
        verbose_name = _("GB/T 28181 device")
        ordering = ["device_id"]
        verbose_name_plural = _("GB/T 28181 devices")

    def __str__(self) -> str:
        return self.device_id

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.host else ""


class Channel(models.Model):
    device = models.ForeignKey(
        Device, on_delete=models.CASCADE, related_name="channels", verbose_name=_("device")
    )
    channel_id = models.CharField(_("ChannelID"), max_length=20, validators=[twenty_digits])
    name = models.CharField(max_length=128, blank=True, verbose_name=_("name"))
    manufacturer = models.CharField(max_length=128, blank=True, verbose_name=_("manufacturer"))
    model = models.CharField(max_length=128, blank=True, verbose_name=_("model"))
    status = models.CharField(
        max_length=16,
        blank=True,
        help_text=_("Status of the Catalog item"),
        verbose_name=_("status"),
    )
    parent_id = models.CharField(_("ParentID"), max_length=64, blank=True)
    civil_code = models.CharField(_("CivilCode"), max_length=32, blank=True)
    address = models.CharField(max_length=256, blank=True, verbose_name=_("address"))
    updated_at = models.DateTimeField(default=timezone.now, verbose_name=_("updated at"))

    history = history()

    class Meta:
        verbose_name = _("GB/T 28181 channel")
        ordering = ["device__device_id", "channel_id"]
        constraints = [
            models.UniqueConstraint(fields=["device", "channel_id"], name="gb28181_channel_once")
        ]
        verbose_name_plural = _("GB/T 28181 channels")

    def __str__(self) -> str:
        return f"{self.device.device_id}/{self.channel_id}"

    @property
    def is_on(self) -> bool:
        return self.status.upper() in {"ON", "OK", "ONLINE"}

    @property
    def url(self) -> str:
        """The task URL naming this channel (docs/gb28181.md)."""
        return f"gb28181://{self.device.device_id}/{self.channel_id}"
