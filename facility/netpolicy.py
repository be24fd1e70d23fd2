"""Which addresses the facility may send requests to (package downloads,
result deliveries, the platform). Link-local and cloud metadata addresses are
refused by default; FACILITY_DENY_NETWORKS and FACILITY_ALLOW_NETWORKS
(comma-separated CIDRs) adjust that: an allow list, when set, is the only
space allowed, and the deny list always wins."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

from facility.errors import Invalid

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(values: list[str]) -> list[Network]:
    return [ipaddress.ip_network(value, strict=False) for value in values]


def address_allowed(address: str) -> tuple[bool, str]:
    ip = ipaddress.ip_address(address)
    for network in _networks(settings.DENY_NETWORKS):
        if ip.version == network.version and ip in network:
            return False, f"{address} is in the denied network {network}"
    allow = _networks(settings.ALLOW_NETWORKS)
    if allow and not any(ip.version == n.version and ip in n for n in allow):
        return False, f"{address} is outside the allowed networks"
    return True, ""


def check_url_literal(url: str, field: str) -> None:
    """At request time: refuse a URL whose host is a denied IP literal
    (no name lookup here: that is done when connecting)."""
    host = urlsplit(url).hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return
    allowed, why = address_allowed(host)
    if not allowed:
        raise Invalid(_("target not allowed: %(why)s") % {"why": why}, field=field)


def check_url_resolved(url: str) -> None:
    """Before connecting: every address the host resolves to must be allowed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return  # the connection attempt reports the lookup failure itself
    for info in infos:
        allowed, why = address_allowed(str(info[4][0]))
        if not allowed:
            raise PermissionError(f"target not allowed: {why}")
