"""Background entry points (django-q2). Each takes primary keys and the
transfer generation it was queued for, claims its row with a
compare-and-swap, and is safe to run twice: a second run finds nothing to
claim and returns."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction

from algorithms import actions, unpack
from algorithms.choices import ExecKind, TransferState
from algorithms.fetch import Cancelled, DownloadError, Fetched, FetchLimits, downloader_for
from algorithms.manifest import ManifestError, read_manifest
from algorithms.models import AlgoFilePackage, ExecFile, Transfer

log = logging.getLogger(__name__)


class Refused(Exception):
    """The fetched file is not acceptable (checksum, content)."""


def fetch_limits() -> FetchLimits:
    return FetchLimits(
        max_bytes=settings.PACKAGE_MAX_DOWNLOAD_BYTES,
        connect_timeout_s=settings.DOWNLOAD_CONNECT_TIMEOUT_S,
        read_timeout_s=settings.DOWNLOAD_READ_TIMEOUT_S,
        attempts=settings.DOWNLOAD_ATTEMPTS,
        backoff_s=settings.DOWNLOAD_BACKOFF_S,
        verify_tls=settings.DOWNLOAD_VERIFY_TLS,
    )


def unpack_limits() -> unpack.Limits:
    return unpack.Limits(
        max_bytes=settings.PACKAGE_MAX_UNPACKED_BYTES, max_members=settings.PACKAGE_MAX_MEMBERS
    )


def _fetch(model: type[Transfer], row: Transfer, generation: int, dest: Path) -> Fetched:
    def progress(done: int, total: int | None) -> None:
        if not model.beat(row.pk, generation, done, total):
            raise Cancelled()

    fetched = downloader_for(row.url).fetch(row.url, dest, fetch_limits(), progress)
    if row.md5 and fetched.md5 != row.md5:
        raise Refused(f"MD5 mismatch: expected {row.md5}, file has {fetched.md5}")
    return fetched


def _failure_reason(error: Exception) -> str:
    if isinstance(error, DownloadError):
        return f"download failed: {error}"
    if isinstance(error, unpack.UnsafeArchive):
        return f"archive refused: {error}"
    return str(error)


def download_package(package_id: str, generation: int) -> None:
    if not AlgoFilePackage.claim(package_id, generation):
        return
    package = AlgoFilePackage.objects.get(pk=package_id)
    work = package.work_dir(generation)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    archive = work / "package.archive"
    try:
        fetched = _fetch(AlgoFilePackage, package, generation, archive)
        content = work / "content"
        unpacked = unpack.extract(archive, content, unpack_limits())
        manifest, root = read_manifest(content, settings.PACKAGE_MAX_MANIFEST_BYTES)
        archive.unlink()
    except Cancelled:
        shutil.rmtree(work, ignore_errors=True)
        return
    except (DownloadError, unpack.UnsafeArchive, ManifestError, Refused) as error:
        shutil.rmtree(work, ignore_errors=True)
        _finish_package(package_id, generation, failure=_failure_reason(error))
        return
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        _finish_package(package_id, generation, failure="internal error while fetching")
        raise

    def apply(row: AlgoFilePackage) -> None:
        row.finish_transfer(fetched.size, fetched.md5)
        row.name, row.version, row.author = manifest.name, manifest.version, manifest.author
        row.description, row.tags = manifest.description, manifest.tags
        row.bin, row.runtime = manifest.bin, manifest.runtime
        row.unpacked_bytes = unpacked
        row.content_dir = str(root)

    _finish_package(package_id, generation, apply=apply)


def _finish_package(package_id: str, generation: int, *, apply=None, failure: str = "") -> None:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        row = (
            AlgoFilePackage.objects.select_for_update()
            .filter(pk=package_id, generation=generation, transfer_state=TransferState.RUNNING)
            .first()
        )
        if row is None:  # replaced or deleted meanwhile
            shutil.rmtree(
                AlgoFilePackage(package_id=package_id).work_dir(generation), ignore_errors=True
            )
            return
        if failure:
            row.fail_transfer(failure)
        else:
            apply(row)
        row.refresh_status()
        row.save()
        keep = row.work_dir(generation).name
        store = row.store_dir
        transaction.on_commit(lambda: _prune_generations(store, keep))
    actions.settle(package_id)
    log.info("package %s: %s", package_id, failure or "fetched and unpacked")


def _prune_generations(store: Path, keep: str) -> None:
    if not store.is_dir():
        return
    for entry in store.iterdir():
        if entry.name.startswith("g") and entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)


def download_exec_file(exec_file_id: int, generation: int) -> None:
    if not ExecFile.claim(exec_file_id, generation):
        return
    exec_file = ExecFile.objects.select_related("package").get(pk=exec_file_id)
    work = exec_file.work_dir(generation)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    target = work / ("image.tar" if exec_file.kind == ExecKind.IMAGE else "artifact.archive")
    try:
        fetched = _fetch(ExecFile, exec_file, generation, target)
        if exec_file.kind == ExecKind.IMAGE:
            if not unpack.is_docker_image_archive(target):
                raise Refused("image file is not a `docker save` archive (no manifest.json)")
            stored = target
        else:
            stored = work / "content"
            unpack.extract(target, stored, unpack_limits())
            target.unlink()
    except Cancelled:
        shutil.rmtree(work, ignore_errors=True)
        return
    except (DownloadError, unpack.UnsafeArchive, Refused) as error:
        shutil.rmtree(work, ignore_errors=True)
        _finish_exec(exec_file_id, generation, failure=_failure_reason(error))
        return
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        _finish_exec(exec_file_id, generation, failure="internal error while fetching")
        raise
    _finish_exec(exec_file_id, generation, fetched=fetched, stored=stored)


def _finish_exec(
    exec_file_id: int,
    generation: int,
    *,
    fetched: Fetched | None = None,
    stored: Path | None = None,
    failure: str = "",
) -> None:
    with transaction.atomic():
        row = (
            ExecFile.objects.select_for_update()
            .filter(pk=exec_file_id, generation=generation, transfer_state=TransferState.RUNNING)
            .first()
        )
        if row is None:
            return
        if failure or fetched is None:
            row.fail_transfer(failure)
        else:
            row.finish_transfer(fetched.size, fetched.md5)
            row.path = str(stored)
        row.save()
        package_id = row.package_id
        store, keep = row.package.store_dir, row.work_dir(generation).name
        transaction.on_commit(lambda: _prune_exec_generations(store, keep))
    actions.settle(package_id)


def _prune_exec_generations(store: Path, keep: str) -> None:
    if not store.is_dir():
        return
    for entry in store.iterdir():
        if entry.name.startswith("exec-g") and entry.name != keep:
            shutil.rmtree(entry, ignore_errors=True)


def reconcile_transfers() -> int:
    """Scheduled: pick up transfers whose worker died or whose job was lost."""
    return actions.requeue_lost_transfers()
