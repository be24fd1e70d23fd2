from django.db import models
from django.utils.translation import gettext_lazy as _


class TaskStatus(models.TextChoices):
    """表K.4 Status."""

    PENDING = "PENDING", _("waiting")
    RUNNING = "RUNNING", _("running")
    PAUSED = "PAUSED", _("paused")
    FINISHED = "FINISHED", _("finished")
    ERROR = "ERROR", _("error")


class RestartPolicy(models.TextChoices):
    NEVER = "NEVER", _("never restart")
    ALWAYS = "ALWAYS", _("always restart")


class DesiredState(models.TextChoices):
    RUNNING = "running", _("run")
    STOPPED = "stopped", _("keep stopped")


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("to deliver")
    DELIVERED = "delivered", _("delivered")
    DEAD = "dead", _("dead letter")


# statuses in which a task holds a stream on an engine
HOLDS_STREAM = (TaskStatus.RUNNING,)


class ImageJobState(models.TextChoices):
    """An input image's analysis (tasks/images.py)."""

    PENDING = "pending", _("to analyse")
    RUNNING = "running", _("analysing")
    DONE = "done", _("analysed")
    FAILED = "failed", _("failed")
