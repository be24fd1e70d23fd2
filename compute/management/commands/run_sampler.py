"""Sample the local node every FACILITY_SAMPLE_INTERVAL_S seconds until stopped."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.db import close_old_connections, connection
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from compute import jobs
from facility.commands import TranslatedCommand


class Command(TranslatedCommand):
    help = gettext_noop(
        "Store a resource sample of this machine every FACILITY_SAMPLE_INTERVAL_S seconds."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval", type=float, default=None, help=gettext_noop("seconds between samples")
        )
        parser.add_argument(
            "--count",
            type=int,
            default=0,
            help=gettext_noop("stop after this many ticks (0: never)"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        interval = options["interval"] or settings.FACILITY_SAMPLE_INTERVAL_S
        stop = threading.Event()
        previous = {
            signum: signal.signal(signum, lambda *args: stop.set())
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        taken = ticks = 0
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                if not connection.in_atomic_block:
                    # drop a connection the database closed meanwhile (long-lived loop);
                    # never inside a transaction the caller holds (tests)
                    close_old_connections()
                try:
                    jobs.sample_local_node(force=True)
                    taken += 1
                except Exception as error:  # keep sampling through a passing DB outage
                    self.stderr.write(_("sampler: %(error)r") % {"error": error})
                ticks += 1
                if options["count"] and ticks >= options["count"]:
                    break
                # fixed cadence: the next tick does not drift by the work time;
                # a tick that overran (or a suspended machine) restarts the cadence
                next_at = max(next_at + interval, time.monotonic())
                stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            jobs.close_probes()
        self.stdout.write(_("sampler: %(count)d sample(s) stored") % {"count": taken})
