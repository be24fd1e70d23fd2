"""Operations on algorithm packages: the only entry points views and jobs use."""

from __future__ import annotations

import logging
import re
import shutil
from datetime import timedelta
from pathlib import Path

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from algorithms.choices import ExecKind, PackageStatus, PushSource, TransferState
from algorithms.models import AlgoFilePackage, ExecFile
from facility.errors import Conflict, Invalid, NotFound
from facility.queue import enqueue

log = logging.getLogger(__name__)

PACKAGE_ID_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
PACKAGE_ID_HELP = gettext_lazy(
    "may contain only letters, digits, '.', '_' and '-', starting with a letter or digit"
)

CREATED, UNCHANGED, RETRIED, REPLACED = "created", "unchanged", "retried", "replaced"


def check_package_id(package_id: str) -> None:
    if not PACKAGE_ID_RULE.match(package_id):
        raise Invalid(str(PACKAGE_ID_HELP), field="AlgoFilePackageID")


def _enqueue_package(package: AlgoFilePackage) -> None:
    enqueue(
        "algorithms.jobs.download_package",
        package.package_id,
        package.generation,
        name=f"download package {package.package_id}",
    )


def _enqueue_exec(exec_file: ExecFile) -> None:
    enqueue(
        "algorithms.jobs.download_exec_file",
        exec_file.pk,
        exec_file.generation,
        name=f"download exec file of {exec_file.package_id}",
    )


def push_package(
    *,
    package_id: str,
    url: str,
    md5: str = "",
    name: str = "",
    source: str = PushSource.CAP,
    auth_address: str = "",
    license_file: str = "",
) -> tuple[AlgoFilePackage, str]:
    """Accept a push (表28 / 表2). The download runs in a worker.

    The same ID with the same Url and MD5 is idempotent (a package in error
    is fetched again); a different Url or MD5 for a package that is not in
    error is a conflict: delete it first, so a working package is never lost
    to a push that may fail."""
    check_package_id(package_id)
    md5 = md5.lower()
    try:
        with transaction.atomic():
            package = AlgoFilePackage.objects.select_for_update().filter(pk=package_id).first()
            if package is None:
                package = AlgoFilePackage(
                    package_id=package_id,
                    url=url,
                    md5=md5,
                    requested_name=name,
                    source=source,
                    auth_address=auth_address,
                    license_file=license_file,
                )
                package.save(force_insert=True)
                _enqueue_package(package)
                return package, CREATED
            same = package.url == url and package.md5 == md5
            if package.status != PackageStatus.ERROR:
                if same:
                    return package, UNCHANGED
                raise Conflict(
                    _(
                        "package %(id)s already exists with a different Url or MD5; "
                        "delete it first or push under a new AlgoFilePackageID"
                    )
                    % {"id": package_id},
                    field="AlgoFilePackageID",
                )
            package.restart_transfer(url, md5)
            package.requested_name = name or package.requested_name
            package.auth_address = auth_address
            package.license_file = license_file
            _clear_manifest(package)
            package.refresh_status()
            package.save()
            _enqueue_package(package)
            return package, (RETRIED if same else REPLACED)
    except IntegrityError:
        # a concurrent push of the same ID won the insert: answer as a repeat
        return push_package(
            package_id=package_id,
            url=url,
            md5=md5,
            name=name,
            source=source,
            auth_address=auth_address,
            license_file=license_file,
        )


def _clear_manifest(package: AlgoFilePackage) -> None:
    package.name = package.version = package.author = package.description = ""
    package.tags, package.bin, package.runtime = [], {}, {}
    package.unpacked_bytes = None
    package.content_dir = ""


def push_exec_file(
    *, package_id: str, kind: str, url: str, md5: str, name: str = ""
) -> tuple[ExecFile, str]:
    """Accept the executable of a package (表32). It may arrive before the
    package has finished downloading; it is then checked against algo.yaml
    once the package is unpacked. A new Url/MD5/Type replaces the previous
    executable."""
    check_package_id(package_id)
    md5 = md5.lower()
    with transaction.atomic():
        package = AlgoFilePackage.objects.select_for_update().filter(pk=package_id).first()
        if package is None:
            raise NotFound(
                _("no package %(id)s: push the package first (POST /CAP/AlgoFilePackages)")
                % {"id": package_id},
                field="AlgoFilePackageID",
            )
        if package.transfer_state == TransferState.FAILED:
            raise Conflict(
                _(
                    "package %(id)s is in error (%(reason)s); "
                    "push the package again before its executable"
                )
                % {"id": package_id, "reason": package.transfer_error}
            )
        if package.transfer_state == TransferState.DONE:
            mismatch = manifest_mismatch(package, kind, md5)
            if mismatch:
                raise Conflict(mismatch, field="Type" if "Type" in mismatch else "MD5")
        exec_file = package.exec_file_or_none
        if exec_file is None:
            exec_file = ExecFile(package=package, kind=kind, url=url, md5=md5, name=name)
            exec_file.save()
            outcome = CREATED
        else:
            same = (exec_file.url, exec_file.md5, exec_file.kind) == (url, md5, kind)
            if same and exec_file.transfer_state != TransferState.FAILED:
                return exec_file, UNCHANGED
            exec_file.restart_transfer(url, md5)
            exec_file.kind = kind
            exec_file.name = name
            exec_file.path = ""
            exec_file.save()
            outcome = RETRIED if same else REPLACED
        package.refresh_status()
        package.save()
        _enqueue_exec(exec_file)
        return exec_file, outcome


def manifest_mismatch(package: AlgoFilePackage, kind: str, md5: str) -> str | None:
    """Why an exec file of `kind`/`md5` cannot be this package's executable."""
    declared = package.bin_type
    if declared and declared != kind:
        return f"Type {kind} does not match algo.yaml Bin.Type {declared}"
    declared_md5 = str(package.bin.get("MD5", "")).lower()
    if declared_md5 and md5 and declared_md5 != md5:
        return f"MD5 {md5} does not match algo.yaml Bin.MD5 {declared_md5}"
    return None


def settle(package_id: str) -> None:
    """Check a fetched exec file against the unpacked manifest and derive the
    package status. Called whenever either transfer finishes."""
    with transaction.atomic():
        package = AlgoFilePackage.objects.select_for_update().filter(pk=package_id).first()
        if package is None:
            return
        exec_file = ExecFile.objects.select_for_update().filter(package=package).first()
        if (
            exec_file is not None
            and exec_file.transfer_state == TransferState.DONE
            and package.transfer_state == TransferState.DONE
        ):
            reason = manifest_mismatch(package, exec_file.kind, exec_file.actual_md5)
            if reason is None and exec_file.kind == ExecKind.ARTIFACT and package.bin_local_uri:
                if not (Path(exec_file.path) / package.bin_local_uri).exists():
                    reason = f"artifact has no {package.bin_local_uri} (algo.yaml Bin.LocalUri)"
            if reason is not None:
                exec_file.fail_transfer(reason)
                exec_file.save()
        previous = package.status
        package.refresh_status()
        if package.status != previous:
            package.save()


def get_package(package_id: str) -> AlgoFilePackage:
    package = AlgoFilePackage.objects.filter(pk=package_id).select_related().first()
    if package is None:
        raise NotFound(_("no package %(id)s") % {"id": package_id}, field="AlgoFilePackageID")
    return package


def search_packages(name: str = "") -> QuerySet[AlgoFilePackage]:
    queryset = AlgoFilePackage.objects.all().order_by("-created_at", "package_id")
    if name:
        queryset = queryset.filter(name__icontains=name) | queryset.filter(
            name="", requested_name__icontains=name
        )
    return queryset


ALREADY_DELETED = "already deleted"
DELETED = "deleted"


def delete_package(package_id: str) -> str:
    """Remove the package's rows and files. Deleting it again answers
    success ('already deleted'); an ID that never existed is NotFound."""
    with transaction.atomic():
        package = AlgoFilePackage.objects.select_for_update().filter(pk=package_id).first()
        if package is None:
            was_here = AlgoFilePackage.history.filter(
                package_id=package_id, history_type="-"
            ).exists()
            if was_here:
                return ALREADY_DELETED
            raise NotFound(_("no package %(id)s") % {"id": package_id}, field="AlgoFilePackageID")
        store = package.store_dir
        package.delete()
        transaction.on_commit(lambda: shutil.rmtree(store, ignore_errors=True))
    return DELETED


def requeue_lost_transfers(queued_grace_s: int = 120) -> int:
    """Re-queue transfers whose worker died (no heartbeat) and queued ones
    whose job never reached a worker; the claim makes duplicates harmless."""
    count = 0
    cutoff = timezone.now() - timedelta(seconds=queued_grace_s)
    for model, send in ((AlgoFilePackage, _enqueue_package), (ExecFile, _enqueue_exec)):
        for row in model.stale():
            with transaction.atomic():
                fresh = model.objects.select_for_update().filter(pk=row.pk).first()
                if fresh is None or fresh.generation != row.generation:
                    continue
                fresh.restart_transfer(fresh.url, fresh.md5)
                fresh.save()
                send(fresh)  # type: ignore[operator,arg-type]
                count += 1
        for row in model.objects.filter(transfer_state=TransferState.QUEUED, updated_at__lt=cutoff):
            with transaction.atomic():
                send(row)  # type: ignore[operator,arg-type]
                count += 1
    return count
