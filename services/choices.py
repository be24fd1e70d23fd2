from django.db import models
from django.utils.translation import gettext_lazy as _


class ServiceStatus(models.TextChoices):
    """表J.7 Status."""

    UNSPECIFIED = "UNSPECIFIED", _("unknown")
    INIT = "INIT", _("starting")
    RUNNING = "RUNNING", _("running")
    OVERLOAD = "OVERLOAD", _("over capacity")
    ERROR = "ERROR", _("failed")


class ServiceKind(models.TextChoices):
    SERVICE = "service", _("algorithm service (CAP 表33)")
    MACHINE = "machine", _("installed package (CAD 表4)")


class ReplicaState(models.TextChoices):
    PENDING = "pending", _("waiting to start")
    STARTING = "starting", _("started, engine not answering yet")
    RUNNING = "running", _("running, engine healthy")
    FAILED = "failed", _("exited or unhealthy")
    STOPPED = "stopped", _("stopped")

    @classmethod
    def live(cls) -> tuple[str, ...]:
        return (cls.PENDING, cls.STARTING, cls.RUNNING, cls.FAILED)


CPU_XPU_TYPE = "CPU"
