from django.db import models


class PackageStatus(models.IntegerChoices):
    """Status of an algorithm package, as 表I.5 numbers it."""

    WAITING = 0, "waiting for download"
    NO_EXECUTABLE = 1, "downloaded, executable missing"
    COMPLETE = 2, "complete"
    HAS_RUN = 3, "has run"
    ERROR = 4, "file error"


class TransferState(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "downloading"
    DONE = "done", "done"
    FAILED = "failed", "failed"

    @classmethod
    def active(cls) -> tuple[str, str]:
        return (cls.QUEUED, cls.RUNNING)


class ExecKind(models.TextChoices):
    IMAGE = "image", "container image (docker save tar)"
    ARTIFACT = "artifact", "artifact archive"


class PushSource(models.TextChoices):
    CAP = "cap", "CAP 表28"
    CAD = "cad", "CAD 表2"
