"""Registration with the platform (§7.1.1 a, §7.2.3, §7.2.4).

With FACILITY_PLATFORM_URL set, the facility registers itself (its identity
and basic compute), then sends heartbeats; until the platform accepted the
registration, the CAP service and task interfaces answer Code 50301 (HTTP
503). Without it the facility is standalone and counts as registered.

T/BAX 0006.5 (the platform's side) is not public: paths and payload are
configurable; the defaults are documented in docs/registration.md."""

from __future__ import annotations

import logging
import socket
from typing import Any

import requests
from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from facility.errors import Unavailable
from facility.models import PlatformRegistration

log = logging.getLogger(__name__)

GATED_PREFIXES = ("/CAP/AlgoServices", "/CAP/AlgoTasks")


class NotRegistered(Unavailable):
    code = 50301


def standalone() -> bool:
    return not settings.PLATFORM_URL


def registration() -> PlatformRegistration:
    row = PlatformRegistration.objects.order_by("pk").first()
    if row is None or row.platform_url != settings.PLATFORM_URL:
        PlatformRegistration.objects.all().delete()
        row = PlatformRegistration.objects.create(platform_url=settings.PLATFORM_URL)
    return row


def is_registered() -> bool:
    if standalone():
        return True
    return PlatformRegistration.objects.filter(
        platform_url=settings.PLATFORM_URL, registered=True
    ).exists()


def check_registered(path: str) -> None:
    if path.startswith(GATED_PREFIXES) and not is_registered():
        raise NotRegistered(
            _(
                "this facility is not registered with its platform yet (%(url)s); "
                "service and task interfaces open once it is"
            )
            % {"url": settings.PLATFORM_URL}
        )


def facility_id() -> str:
    return settings.FACILITY_ID or socket.gethostname()[:20]


def basic_info() -> list[dict[str, Any]]:
    from compute.models import Node

    rows = []
    for node in Node.objects.prefetch_related("cards").order_by("id"):
        cards = [card for card in node.cards.all() if card.is_present]
        rows.append(
            {
                "Ip": node.ip,
                "HostName": node.hostname or node.name,
                "Cpu": node.cpu_cores,
                "CpuType": node.cpu_arch,
                "Xpu": len(cards),
                "XpuType": cards[0].xpu_type if cards else "CPU",
                "Memory": round(node.memory_gb, 2),
                "Disk": round(node.disk_gb, 2),
                "OS": node.os[:20],
            }
        )
    return rows


def payload() -> dict[str, Any]:
    return {
        "DeviceID": facility_id(),
        "Role": settings.PLATFORM_ROLE,
        "Address": settings.PUBLIC_URL,
        "Standard": "T/BAX 0006.4-2023",
        "BasicInfo": basic_info(),
    }


def _post(path: str, body: dict[str, Any]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json"}
    if settings.PLATFORM_TOKEN:
        headers["Authorization"] = f"Bearer {settings.PLATFORM_TOKEN}"
    response = requests.post(
        settings.PLATFORM_URL.rstrip("/") + path, json=body, headers=headers, timeout=10
    )
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    code = answer.get("Code", 0) if isinstance(answer, dict) else 0
    if response.status_code >= 300 or code not in (0, "0"):
        message = answer.get("Message", "") if isinstance(answer, dict) else ""
        raise RuntimeError(f"platform answered HTTP {response.status_code} Code {code} {message}")
    return answer if isinstance(answer, dict) else {}


def keep_registered() -> str:
    """One step of the registration loop: register, or send a heartbeat;
    a refused heartbeat leads to registering again."""
    if standalone():
        return "standalone"
    row = registration()
    now = timezone.now()
    row.last_attempt_at = now
    try:
        if not row.registered:
            row.platform_answer = _post(settings.PLATFORM_REGISTER_PATH, payload())
            row.registered, row.registered_at, row.last_heartbeat_at = True, now, now
            outcome = "registered"
        else:
            _post(
                settings.PLATFORM_HEARTBEAT_PATH,
                {"DeviceID": facility_id(), "Time": int(now.timestamp() * 1000)},
            )
            row.last_heartbeat_at = now
            outcome = "heartbeat"
        row.last_error = ""
    except (requests.RequestException, RuntimeError) as error:
        row.last_error = str(error)[:512]
        if row.registered:
            row.registered = False  # register again next time
        outcome = f"failed: {error}"
        log.warning("platform registration: %s", error)
    row.save()
    return outcome
