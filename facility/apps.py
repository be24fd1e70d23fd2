from django.apps import AppConfig


class FacilityConfig(AppConfig):
    name = "facility"
    verbose_name = "Facility"

    def ready(self) -> None:
        from django.contrib import admin

        from facility.audit import register_history_admins

        register_history_admins(admin.site)
