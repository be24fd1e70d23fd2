"""The audit history of packages, and the background jobs' duplicate safety."""

from __future__ import annotations

from typing import Any

from algorithms import jobs
from algorithms.models import AlgoFilePackage, ExecFile
from facility.models import PlatformClient
from tests.algorithms.conftest import PACKAGE_ID, Packages
from tests.support import packages as pkg


def platform_user() -> Any:
    return PlatformClient.objects.get(name="test").user


def test_a_push_is_recorded_with_the_clients_user_and_request_id(packages: Packages) -> None:
    url = packages.serve("p.tar", pkg.package())
    packages.api.post(
        "/CAP/AlgoFilePackages",
        {"AlgoFilePackageID": PACKAGE_ID, "Url": url},
        **{"X-Request-ID": "req-push-1"},
    )

    history = AlgoFilePackage.history.filter(package_id=PACKAGE_ID).order_by("history_date")
    created = history.first()
    assert created.history_type == "+"
    assert created.history_user == platform_user()
    assert created.history_request_id == "req-push-1"
    # the worker's changes follow, marked as such
    worker = history.exclude(history_request_id="req-push-1")
    assert worker.exists()
    assert all(row.history_user is None for row in worker)
    assert history.last().status == 2


def test_a_delete_is_recorded_with_the_clients_user_and_request_id(packages: Packages) -> None:
    packages.push(pkg.package())

    packages.api.delete(f"/CAP/AlgoFilePackages/{PACKAGE_ID}", **{"X-Request-ID": "req-del-1"})

    deleted = AlgoFilePackage.history.get(package_id=PACKAGE_ID, history_type="-")
    assert deleted.history_user == platform_user()
    assert deleted.history_request_id == "req-del-1"


def test_an_exec_file_push_is_recorded_with_the_request_id(packages: Packages) -> None:
    packages.push(pkg.package(with_executable=False))
    url = packages.serve("exec.tar.gz", pkg.artifact())
    packages.api.post(
        "/CAP/AlgoFilePackages:pushExecFile",
        {
            "AlgoFilePackageID": PACKAGE_ID,
            "Type": "artifact",
            "Url": url,
            "MD5": pkg.artifact().md5,
        },
        **{"X-Request-ID": "req-exec-1"},
    )

    created = ExecFile.history.get(history_type="+")
    assert created.history_user == platform_user()
    assert created.history_request_id == "req-exec-1"


def test_download_package_run_twice_for_the_same_generation_downloads_once(
    packages: Packages, settings: Any, file_server: Any
) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"
    packages.push(pkg.package())
    generation = packages.row().generation

    jobs.download_package(PACKAGE_ID, generation)
    jobs.download_package(PACKAGE_ID, generation)

    assert len(file_server.requests) == 1
    row = packages.row()
    assert row.status == 2
    assert row.attempts == 1


def test_download_package_for_an_old_generation_does_nothing(
    packages: Packages, settings: Any, file_server: Any
) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"
    packages.push(pkg.package(), md5="0" * 32)
    jobs.download_package(PACKAGE_ID, 1)
    assert packages.row().status == 4
    packages.push(pkg.package(), name="fixed.tar")
    assert packages.row().generation == 2

    jobs.download_package(PACKAGE_ID, 1)

    assert len(file_server.requests) == 1
    assert packages.row().status == 0
    jobs.download_package(PACKAGE_ID, 2)
    assert packages.row().status == 2


def test_download_exec_file_run_twice_for_the_same_generation_downloads_once(
    packages: Packages, settings: Any, file_server: Any
) -> None:
    packages.push(pkg.package(with_executable=False))
    settings.FACILITY_QUEUE_MODE = "manual"
    packages.push_exec(pkg.artifact(), name="exec.tar.gz")
    exec_file = ExecFile.objects.get()

    jobs.download_exec_file(exec_file.pk, exec_file.generation)
    jobs.download_exec_file(exec_file.pk, exec_file.generation)

    assert [r["path"] for r in file_server.requests].count("exec.tar.gz") == 1
    assert packages.row().status == 2


def test_a_job_for_a_deleted_package_does_nothing(packages: Packages, settings: Any) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"

    jobs.download_package("never-pushed", 1)

    assert not AlgoFilePackage.objects.exists()


def test_a_transfer_whose_worker_died_is_queued_again(
    packages: Packages, settings: Any, file_server: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from algorithms.choices import TransferState

    settings.FACILITY_QUEUE_MODE = "manual"
    packages.push(pkg.package())
    # a worker claimed it and died: running, with an old heartbeat
    AlgoFilePackage.objects.filter(pk=PACKAGE_ID).update(
        transfer_state=TransferState.RUNNING,
        heartbeat_at=timezone.now() - timedelta(hours=1),
    )
    settings.FACILITY_QUEUE_MODE = "sync"

    with packages.api.capture(execute=True):
        count = jobs.reconcile_transfers()

    assert count == 1
    row = packages.row()
    assert row.generation == 2
    assert row.status == 2
