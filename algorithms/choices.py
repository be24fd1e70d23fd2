from django.db import models
from django.utils.translation import gettext_lazy as _


class PackageStatus(models.IntegerChoices):
    """Status of an algorithm package, as 表I.5 numbers it."""

    WAITING = 0, _("waiting for download")
    NO_EXECUTABLE = 1, _("downloaded, executable missing")
    COMPLETE = 2, _("complete")
    HAS_RUN = 3, _("has run")
    ERROR = 4, _("file error")


class TransferState(models.TextChoices):
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("downloading")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")

    @classmethod
    def active(cls) -> tuple[str, str]:
        return (cls.QUEUED, cls.RUNNING)


class ExecKind(models.TextChoices):
    IMAGE = "image", _("container image (docker save tar)")
    ARTIFACT = "artifact", _("artifact archive")


class PushSource(models.TextChoices):
    CAP = "cap", _("CAP 表28")
    CAD = "cad", _("CAD 表2")
