from __future__ import annotations

from django.db import models


class FileType(models.TextChoices):
    ENGINE = "Engine", "Engine (a container image)"
    FILE_PACKAGE = "FilePackage", "FilePackage (an algorithm package holding the image)"


class EngineState(models.TextChoices):
    PENDING = "pending", "pending"
    LOADING = "loading", "loading"
    READY = "ready", "ready"
    FAILED = "failed", "failed"


class PodPhase(models.TextChoices):
    """The Kubernetes pod phases (表G.19 Status)."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"
