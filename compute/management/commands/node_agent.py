"""The agent of a remote node: reads this machine with the same probes as the
facility's own sampler and posts each reading to the central facility
(POST /api/compute/nodes/<NodeID>/samples) with the node's credential. It
needs no database and no shared filesystem."""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import asdict
from typing import Any

import requests
from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from compute.probes import probes_for_local_node, read_all
from facility.commands import TranslatedCommand


def reading_body(reading: Any, interval_s: float) -> dict[str, Any]:
    """The sample body of the node REST API (docs/compute.md)."""
    data = asdict(reading)
    return {
        "Inventory": {
            "HostName": data["hostname"] or "",
            "Ip": data["ip"] or "",
            "CpuType": data["cpu_arch"] or "x86",
            "OS": data["os"] or "",
            "Cpu": data["cpu_cores"] or 0,
            "Memory": data["memory_gb"] or 0,
            "Disk": data["disk_gb"] or 0,
            "XpuNote": data["xpu_note"] or "",
        },
        "CpuUtilization": data["cpu_utilization"] or 0,
        "MemoryUsed": data["memory_used_gb"] or 0,
        "DiskUsed": data["disk_used_gb"] or 0,
        "PeriodS": int(interval_s),
        "Cards": [
            {
                "Index": card["index"],
                "Uuid": card["uuid"],
                "XpuType": card["xpu_type"],
                "XpuMemory": card["memory_gb"],
                "XpuMemoryUsed": card["memory_used_gb"],
                "XpuUtilization": card["utilization"],
                "Processes": card["processes"],
            }
            for card in data["cards"] or []
        ],
    }


class Command(TranslatedCommand):
    help = gettext_noop("Post this machine's resource samples to a central facility until stopped.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--facility",
            default=os.environ.get("FACILITY_AGENT_URL", ""),
            help=gettext_noop(
                "base URL of the central facility, e.g. http://10.0.0.1:8000 (FACILITY_AGENT_URL)"
            ),
        )
        parser.add_argument(
            "--node",
            default=os.environ.get("FACILITY_AGENT_NODE", ""),
            help=gettext_noop("this node's NodeID or name on the facility (FACILITY_AGENT_NODE)"),
        )
        parser.add_argument(
            "--interval", type=float, default=None, help=gettext_noop("seconds between samples")
        )
        parser.add_argument(
            "--count",
            type=int,
            default=0,
            help=gettext_noop("stop after this many tries (0: never)"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # the token comes from the environment only: argv is visible to every user
        token = os.environ.get("FACILITY_AGENT_TOKEN", "")
        if not (options["facility"] and options["node"] and token):
            raise CommandError(
                _("set --facility, --node and the FACILITY_AGENT_TOKEN environment variable")
            )
        url = f"{options['facility'].rstrip('/')}/api/compute/nodes/{options['node']}/samples"
        interval = options["interval"] or settings.FACILITY_SAMPLE_INTERVAL_S
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        probes = probes_for_local_node()
        stop = threading.Event()
        previous = {
            signum: signal.signal(signum, lambda *args: stop.set())
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        posted = ticks = 0
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                body = reading_body(read_all(probes), interval)
                try:
                    response = session.post(url, json=body, timeout=(5, 15))
                except requests.RequestException as error:
                    self.stderr.write(
                        _("agent: facility unreachable: %(error)s") % {"error": error}
                    )
                else:
                    if response.status_code in (401, 403, 404):
                        # a wrong credential or node does not heal by retrying
                        raise CommandError(
                            _("agent: facility refused (%(status)d): %(answer)s")
                            % {"status": response.status_code, "answer": response.text[:300]}
                        )
                    if response.status_code != 200:
                        self.stderr.write(
                            _("agent: HTTP %(status)d") % {"status": response.status_code}
                        )
                    else:
                        posted += 1
                ticks += 1
                if options["count"] and ticks >= options["count"]:
                    break
                # a tick that overran (or a suspended machine) restarts the cadence
                next_at = max(next_at + interval, time.monotonic())
                stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            for probe in probes:
                probe.close()
        self.stdout.write(_("agent: %(count)d sample(s) posted") % {"count": posted})
