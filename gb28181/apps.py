from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class Gb28181Config(AppConfig):
    name = "gb28181"
    verbose_name = _("GB/T 28181: cameras registered with the facility")
