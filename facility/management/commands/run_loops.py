from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.management.base import CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from facility.commands import TranslatedCommand
from facility.loops import LOOPS, run_all


class Command(TranslatedCommand):
    help = gettext_noop(
        "Run the sub-minute loops (resource sampler, service reconciler) until stopped."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "names",
            nargs="*",
            metavar="{" + ",".join(loop.name for loop in LOOPS) + "}",
            help=gettext_noop("loops to run (default: all)"),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        threads = run_all(stop, options["names"] or None)
        self.stdout.write(
            _("loops running: %(loops)s") % {"loops": ", ".join(t.name for t in threads)}
        )
        while not stop.is_set():
            stop.wait(1.0)
        for thread in threads:
            thread.join(timeout=15)
