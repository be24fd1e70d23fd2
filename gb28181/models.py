"""Cameras (and NVRs) that register with the facility over GB/T 28181 SIP, and
the channels their Catalog lists. Rows are written by `manage.py run_gb28181`;
the admin shows them read-only.

Keepalives only move `last_keepalive_at` (a queryset update, no history row);
registration, going offline and catalog changes are saved with history."""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from facility.history import history

twenty_digits = RegexValidator(r"^\d{20}$", "a GB/T 28181 ID has 20 digits")


class Transport(models.TextChoices):
    UDP = "UDP", "UDP"
    TCP = "TCP", "TCP"


class Device(models.Model):
    device_id = models.CharField("DeviceID", max_length=20, unique=True, validators=[twenty_digits])
    name = models.CharField(max_length=128, blank=True, help_text="DeviceName of DeviceInfo")
    host = models.CharField(max_length=64, blank=True, help_text="where its SIP messages come from")
    port = models.PositiveIntegerField(null=True, blank=True)
    transport = models.CharField(max_length=3, choices=Transport.choices, default=Transport.UDP)
    online = models.BooleanField(default=False)
    registered_at = models.DateTimeField(null=True, blank=True)
    registered_until = models.DateTimeField(null=True, blank=True)
    last_keepalive_at = models.DateTimeField(null=True, blank=True, db_index=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    model = models.CharField(max_length=128, blank=True)
    firmware = models.CharField(max_length=128, blank=True)
    catalog_at = models.DateTimeField(
        null=True, blank=True, help_text="when its last Catalog response arrived"
    )
    created_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        verbose_name = "GB/T 28181 device"
        ordering = ["device_id"]

    def __str__(self) -> str:
        return self.device_id

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.host else ""


class Channel(models.Model):
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="channels")
    channel_id = models.CharField("ChannelID", max_length=20, validators=[twenty_digits])
    name = models.CharField(max_length=128, blank=True)
    manufacturer = models.CharField(max_length=128, blank=True)
    model = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=16, blank=True, help_text="Status of the Catalog item")
    parent_id = models.CharField("ParentID", max_length=64, blank=True)
    civil_code = models.CharField("CivilCode", max_length=32, blank=True)
    address = models.CharField(max_length=256, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    history = history()

    class Meta:
        verbose_name = "GB/T 28181 channel"
        ordering = ["device__device_id", "channel_id"]
        constraints = [
            models.UniqueConstraint(fields=["device", "channel_id"], name="gb28181_channel_once")
        ]

    def __str__(self) -> str:
        return f"{self.device.device_id}/{self.channel_id}"

    @property
    def is_on(self) -> bool:
        return self.status.upper() in {"ON", "OK", "ONLINE"}

    @property
    def url(self) -> str:
        """The task URL naming this channel (docs/gb28181.md)."""
        return f"gb28181://{self.device.device_id}/{self.channel_id}"
