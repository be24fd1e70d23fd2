from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from algorithms.choices import ExecKind, PackageStatus, PushSource, TransferState
from facility.history import history


class Transfer(models.Model):
    """A file fetched by a worker. `generation` numbers each (re)start: a job
    carries the generation it was started for and stops as soon as the row
    moved on (replaced, deleted, or re-queued after its worker died)."""

    url = models.CharField(max_length=1024, verbose_name=_("url"))
    md5 = models.CharField(_("MD5 (declared)"), max_length=32, blank=True)
    transfer_state = models.CharField(
        max_length=16,
        choices=TransferState.choices,
        default=TransferState.QUEUED,
        db_index=True,
        verbose_name=_("transfer state"),
    )
    generation = models.PositiveIntegerField(default=1, verbose_name=_("generation"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    bytes_done = models.BigIntegerField(default=0, verbose_name=_("bytes done"))
    bytes_total = models.BigIntegerField(null=True, blank=True, verbose_name=_("bytes total"))
    actual_md5 = models.CharField(_("MD5 (measured)"), max_length=32, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True, verbose_name=_("heartbeat at"))
    transfer_error = models.TextField(blank=True, verbose_name=_("transfer error"))
    transfer_finished_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("transfer finished at")
    )

    class Meta:
        abstract = True

    @property
    def progress(self) -> int:
        """Percent of the file fetched (0–100)."""
        if self.transfer_state == TransferState.DONE:
            return 100
        if not self.bytes_total:
            return 0
        return min(99, int(self.bytes_done * 100 / self.bytes_total))

    def restart_transfer(self, url: str, md5: str) -> None:
        self.url = url
        self.md5 = md5
        self.transfer_state = TransferState.QUEUED
        self.generation += 1
        self.bytes_done = 0
        self.bytes_total = None
        self.actual_md5 = ""
        self.transfer_error = ""
        self.heartbeat_at = None
        self.transfer_finished_at = None

    @classmethod
    def claim(cls, pk: Any, generation: int) -> bool:
        """Compare-and-swap the queued transfer to running; False when another
        worker has it, or it was replaced or deleted."""
        now = timezone.now()
        return bool(
            cls._default_manager.filter(
                pk=pk, generation=generation, transfer_state=TransferState.QUEUED
            ).update(
                transfer_state=TransferState.RUNNING,
                heartbeat_at=now,
                attempts=models.F("attempts") + 1,
            )
        )

    @classmethod
    def beat(cls, pk: Any, generation: int, bytes_done: int, bytes_total: int | None) -> bool:
        """Record progress; False when the transfer is no longer ours."""
        return bool(
            cls._default_manager.filter(
                pk=pk, generation=generation, transfer_state=TransferState.RUNNING
            ).update(bytes_done=bytes_done, bytes_total=bytes_total, heartbeat_at=timezone.now())
        )

    @classmethod
    def stale(cls) -> models.QuerySet[Any]:
        limit = timezone.now() - timedelta(seconds=settings.DOWNLOAD_STALE_AFTER_S)
        return cls._default_manager.filter(
            transfer_state=TransferState.RUNNING, heartbeat_at__lt=limit
        )

    def finish_transfer(self, size: int, md5: str) -> None:
        self.transfer_state = TransferState.DONE
        self.bytes_done = size
        self.bytes_total = size
        self.actual_md5 = md5
        self.transfer_error = ""
        self.transfer_finished_at = timezone.now()

    def fail_transfer(self, reason: str) -> None:
        self.transfer_state = TransferState.FAILED
        self.transfer_error = reason[:4000]
        self.transfer_finished_at = timezone.now()


class AlgoFilePackage(Transfer):
    """An algorithm package (表I.7): the archive, its algo.yaml and status."""

    package_id = models.CharField(_("AlgoFilePackageID"), max_length=40, primary_key=True)
    requested_name = models.CharField(
        _("Name (as pushed)"), max_length=128, blank=True, help_text=_("Name sent with the push")
    )
    source = models.CharField(
        max_length=8, choices=PushSource.choices, default=PushSource.CAP, verbose_name=_("source")
    )
    auth_address = models.CharField(max_length=1024, blank=True, verbose_name=_("auth address"))
    license_file = models.CharField(max_length=1024, blank=True, verbose_name=_("license file"))
    status = models.IntegerField(
        choices=PackageStatus.choices,
        default=PackageStatus.WAITING,
        db_index=True,
        verbose_name=_("status"),
    )
    status_reason = models.TextField(
        blank=True, help_text=_("why the package is in error"), verbose_name=_("status reason")
    )
    has_run = models.BooleanField(default=False, verbose_name=_("has run"))

    # what algo.yaml says (empty until the package is unpacked)
    name = models.CharField(max_length=128, blank=True, db_index=True, verbose_name=_("name"))
    version = models.CharField(max_length=20, blank=True, verbose_name=_("version"))
    author = models.CharField(max_length=20, blank=True, verbose_name=_("author"))
    description = models.CharField(max_length=1024, blank=True, verbose_name=_("description"))
    tags = models.JSONField(default=list, blank=True, verbose_name=_("tags"))
    bin = models.JSONField(default=dict, blank=True, verbose_name=_("bin"))
    runtime = models.JSONField(default=dict, blank=True, verbose_name=_("runtime"))
    unpacked_bytes = models.BigIntegerField(null=True, blank=True, verbose_name=_("unpacked bytes"))
    content_dir = models.CharField(max_length=1024, blank=True, verbose_name=_("content dir"))

    created_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("created at")
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = history()

    class Meta:
        verbose_name = _("algorithm package")
        ordering = ["-created_at", "package_id"]
        verbose_name_plural = _("algorithm packages")

    def __str__(self) -> str:
        label = self.name or self.requested_name
        return f"{self.package_id} ({label})" if label else self.package_id

    @property
    def display_name(self) -> str:
        return self.name or self.requested_name

    @property
    def store_dir(self) -> Path:
        return Path(settings.PACKAGE_STORE) / self.package_id

    def work_dir(self, generation: int) -> Path:
        return self.store_dir / f"g{generation}"

    @property
    def bin_type(self) -> str:
        return str(self.bin.get("Type", "")) if self.bin else ""

    @property
    def bin_local_uri(self) -> str:
        return str(self.bin.get("LocalUri", "")) if self.bin else ""

    def executable_in_package(self) -> Path | None:
        """The executable that ships inside the package, if algo.yaml points
        at one that exists."""
        if not self.content_dir or not self.bin_local_uri:
            return None
        path = Path(self.content_dir) / self.bin_local_uri
        return path if path.exists() else None

    @property
    def exec_file_or_none(self) -> ExecFile | None:
        try:
            return self.exec_file
        except ExecFile.DoesNotExist:
            return None

    def refresh_status(self) -> None:
        """Derive 表I.5's Status from the transfers; call after any of them moved."""
        exec_file = self.exec_file_or_none
        if self.transfer_state in TransferState.active():
            status, reason = PackageStatus.WAITING, ""
        elif self.transfer_state == TransferState.FAILED:
            status, reason = PackageStatus.ERROR, self.transfer_error
        elif self.executable_in_package() is not None:
            status, reason = PackageStatus.COMPLETE, ""
        elif exec_file is not None and exec_file.transfer_state == TransferState.FAILED:
            status, reason = PackageStatus.ERROR, f"exec file: {exec_file.transfer_error}"
        elif exec_file is not None and exec_file.transfer_state == TransferState.DONE:
            status, reason = PackageStatus.COMPLETE, ""
        else:
            status, reason = PackageStatus.NO_EXECUTABLE, ""
        if status == PackageStatus.COMPLETE and self.has_run:
            status = PackageStatus.HAS_RUN
        self.status = status
        self.status_reason = reason

    def mark_has_run(self) -> None:
        if self.status not in (PackageStatus.COMPLETE, PackageStatus.HAS_RUN):
            raise ValueError(f"package {self.package_id} is not complete")
        self.has_run = True
        self.refresh_status()

    def remove_files(self) -> None:
        shutil.rmtree(self.store_dir, ignore_errors=True)


class ExecFile(Transfer):
    """The executable of a package pushed on its own (表32)."""

    package = models.OneToOneField(
        AlgoFilePackage,
        on_delete=models.CASCADE,
        related_name="exec_file",
        verbose_name=_("package"),
    )
    kind = models.CharField(max_length=10, choices=ExecKind.choices, verbose_name=_("kind"))
    name = models.CharField(max_length=128, blank=True, verbose_name=_("name"))
    path = models.CharField(
        max_length=1024, blank=True, help_text=_("where the file is stored"), verbose_name=_("path")
    )
    created_at = models.DateTimeField(default=timezone.now, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = history()

    class Meta:
        verbose_name = _("exec file")
        verbose_name_plural = _("exec files")

    def __str__(self) -> str:
        return f"{self.kind} for {self.package_id}"

    def work_dir(self, generation: int) -> Path:
        return self.package.store_dir / f"exec-g{generation}"
