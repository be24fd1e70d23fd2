"""What SIP events do to the Device and Channel rows."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from gb28181.models import Channel, Device

log = logging.getLogger(__name__)


def registered(device_id: str, host: str, port: int, transport: str, expires: int) -> Device:
    now = timezone.now()
    device, _ = Device.objects.get_or_create(device_id=device_id)
    device.host, device.port, device.transport = host, port, transport
    device.online = True
    device.registered_at = now
    device.registered_until = now + timedelta(seconds=expires)
    device.last_keepalive_at = now
    device._change_reason = "REGISTER"  # type: ignore[attr-defined]
    device.save()
    return device


def unregistered(device_id: str) -> None:
    device = Device.objects.filter(device_id=device_id).first()
    if device is None:
        return
    device.online = False
    device.registered_until = timezone.now()
    device._change_reason = "REGISTER Expires: 0"  # type: ignore[attr-defined]
    device.save()


def keepalive(device_id: str, host: str, port: int) -> bool:
    """Record a keepalive; False when the device is not registered (it must
    REGISTER again)."""
    now = timezone.now()
    device = Device.objects.filter(device_id=device_id).first()
    if device is None or device.registered_until is None or device.registered_until < now:
        return False
    if not device.online:
        device.online = True
        device.last_keepalive_at = now
        device._change_reason = "keepalive"  # type: ignore[attr-defined]
        device.save()
    else:  # no history row for every keepalive
        Device.objects.filter(pk=device.pk).update(last_keepalive_at=now, host=host, port=port)
    return True


def sweep_offline() -> int:
    """Mark offline the devices whose keepalive or registration ran out.
    Safe to run from a loop (facility.loops) as well as from run_gb28181."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.GB28181_KEEPALIVE_TIMEOUT_S)
    count = 0
    for device in Device.objects.filter(online=True):
        late = device.last_keepalive_at is None or device.last_keepalive_at < stale
        expired = device.registered_until is not None and device.registered_until < now
        if late or expired:
            device.online = False
            device._change_reason = (  # type: ignore[attr-defined]
                "registration expired" if expired else "keepalive timeout"
            )
            device.save()
            log.info("gb28181 device %s offline (%s)", device.device_id, device._change_reason)  # type: ignore[attr-defined]
            count += 1
    return count


@transaction.atomic
def catalog(device_id: str, items: list[dict[str, Any]]) -> int:
    device = Device.objects.filter(device_id=device_id).first()
    if device is None:
        return 0
    now = timezone.now()
    for item in items:
        fields = {k: str(v)[: Channel._meta.get_field(k).max_length] for k, v in item.items()}  # type: ignore[union-attr]
        channel_id = fields.pop("channel_id")
        if len(channel_id) != 20 or not channel_id.isdigit():
            log.warning("gb28181 %s: catalog item %r is not a 20-digit ID", device_id, channel_id)
            continue
        channel = Channel.objects.filter(device=device, channel_id=channel_id).first()
        if channel is None:
            Channel.objects.create(device=device, channel_id=channel_id, updated_at=now, **fields)
        elif any(getattr(channel, k) != v for k, v in fields.items()):
            for k, v in fields.items():
                setattr(channel, k, v)
            channel.updated_at = now
            channel.save()
    Device.objects.filter(pk=device.pk).update(catalog_at=now)
    return len(items)


def device_info(device_id: str, name: str, manufacturer: str, model: str, firmware: str) -> None:
    device = Device.objects.filter(device_id=device_id).first()
    if device is None:
        return
    values = {"name": name, "manufacturer": manufacturer, "model": model, "firmware": firmware}
    if any(getattr(device, k) != v for k, v in values.items()):
        for k, v in values.items():
            setattr(device, k, v[:128])
        device.save()
