from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class FileType(models.TextChoices):
    ENGINE = "Engine", _("Engine (a container image)")
    FILE_PACKAGE = "FilePackage", _("FilePackage (an algorithm package holding the image)")


class EngineState(models.TextChoices):
    PENDING = "pending", _("pending")
    LOADING = "loading", _("loading")
    READY = "ready", _("ready")
    FAILED = "failed", _("failed")


class PodPhase(models.TextChoices):
    """The Kubernetes pod phases (表G.19 Status)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"
