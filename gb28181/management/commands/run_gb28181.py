"""Run the GB/T 28181 SIP platform and the relay that feeds its channels to
engines (docs/gb28181.md) until stopped."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from gb28181.relay import Relay
from gb28181.sip import SipServer


class Command(BaseCommand):
    help = (
        "Accept GB/T 28181 cameras: REGISTER (digest), keepalive, Catalog; INVITE when an "
        "engine opens a channel through the relay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help="default GB28181_SIP_HOST")
        parser.add_argument("--port", type=int, default=None, help="default GB28181_SIP_PORT")
        parser.add_argument(
            "--relay-port", type=int, default=None, help="default GB28181_RELAY_PORT"
        )
        parser.add_argument(
            "--seconds", type=float, default=0, help="stop after this long (0: never)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        previous = {
            signum: signal.signal(signum, lambda *_: stop.set())
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        if options["seconds"]:
            timer = threading.Timer(options["seconds"], stop.set)
            timer.daemon = True
            timer.start()
        server = SipServer(options["host"], options["port"])
        relay = Relay(server, port=options["relay_port"])
        relay.start()
        if not settings.GB28181_PASSWORD:
            self.stderr.write("GB28181_PASSWORD is empty: every REGISTER will be refused (403)")
        self.stdout.write(
            f"GB/T 28181 platform {server.platform_id} on udp {server.host}:{server.port}, "
            f"relay for engines on http://{relay.host}:{relay.port}/gb28181/"
        )
        try:
            server.serve_forever(stop)
        finally:
            relay.close()
            server.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
