from django.apps import AppConfig


class Gb28181Config(AppConfig):
    name = "gb28181"
    verbose_name = "GB/T 28181: cameras registered with the facility"
