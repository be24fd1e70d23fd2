from django.db import models


class ServiceStatus(models.TextChoices):
    """表J.7 Status."""

    UNSPECIFIED = "UNSPECIFIED", "unknown"
    INIT = "INIT", "starting"
    RUNNING = "RUNNING", "running"
    OVERLOAD = "OVERLOAD", "over capacity"
    ERROR = "ERROR", "failed"


class ServiceKind(models.TextChoices):
    SERVICE = "service", "algorithm service (CAP 表33)"
    MACHINE = "machine", "installed package (CAD 表4)"


class ReplicaState(models.TextChoices):
    PENDING = "pending", "waiting to start"
    STARTING = "starting", "started, engine not answering yet"
    RUNNING = "running", "running, engine healthy"
    FAILED = "failed", "exited or unhealthy"
    STOPPED = "stopped", "stopped"

    @classmethod
    def live(cls) -> tuple[str, ...]:
        return (cls.PENDING, cls.STARTING, cls.RUNNING, cls.FAILED)


CPU_XPU_TYPE = "CPU"
