from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class Gb28181Config(AppConfig):
    name = "gb28181"
    verbose_name = _("GB/T 28181: cameras registered with the facility")

    def ready(self) -> None:
        from gb28181 import relay
        from tasks import streams

        streams.register(
            "gb28181", streams.StreamSource(engine_url=relay.engine_url, explain=relay.explain)
        )
