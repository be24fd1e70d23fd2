from django.db import models


class TaskStatus(models.TextChoices):
    """表K.4 Status."""

    PENDING = "PENDING", "waiting"
    RUNNING = "RUNNING", "running"
    PAUSED = "PAUSED", "paused"
    FINISHED = "FINISHED", "finished"
    ERROR = "ERROR", "error"


class RestartPolicy(models.TextChoices):
    NEVER = "NEVER", "never restart"
    ALWAYS = "ALWAYS", "always restart"


class DesiredState(models.TextChoices):
    RUNNING = "running", "run"
    STOPPED = "stopped", "keep stopped"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "to deliver"
    DELIVERED = "delivered", "delivered"
    DEAD = "dead", "dead letter"


# statuses in which a task holds a stream on an engine
HOLDS_STREAM = (TaskStatus.RUNNING,)
