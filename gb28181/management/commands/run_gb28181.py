"""Run the GB/T 28181 SIP platform and the relay that feeds its channels to
engines (docs/gb28181.md) until stopped."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from facility.commands import TranslatedCommand
from gb28181.relay import Relay
from gb28181.sip import SipServer


class Command(TranslatedCommand):
    help = gettext_noop(
        "Accept GB/T 28181 cameras: REGISTER (digest), keepalive, Catalog; INVITE when an "
        "engine opens a channel through the relay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default=None, help=gettext_noop("default GB28181_SIP_HOST"))
        parser.add_argument(
            "--port", type=int, default=None, help=gettext_noop("default GB28181_SIP_PORT")
        )
        parser.add_argument(
            "--relay-port", type=int, default=None, help=gettext_noop("default GB28181_RELAY_PORT")
        )
        parser.add_argument(
            "--seconds", type=float, default=0, help=gettext_noop("stop after this long (0: never)")
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
            self.stderr.write(_("GB28181_PASSWORD is empty: every REGISTER will be refused (403)"))
        self.stdout.write(
            _(
                "GB/T 28181 platform %(id)s on udp %(host)s:%(port)s, "
                "relay for engines on http://%(relay_host)s:%(relay_port)s/gb28181/"
            )
            % {
                "id": server.platform_id,
                "host": server.host,
                "port": server.port,
                "relay_host": relay.host,
                "relay_port": relay.port,
            }
        )
        try:
            server.serve_forever(stop)
        finally:
            relay.close()
            server.close()
            for signum, handler in previous.items():
                signal.signal(signum, handler)
