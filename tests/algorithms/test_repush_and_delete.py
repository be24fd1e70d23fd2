"""Re-pushing an ID (idempotent, conflict, retry after error), deleting (rows
and files, safe to repeat), unknown IDs and missing credentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from algorithms.models import AlgoFilePackage, ExecFile
from tests.algorithms.conftest import PACKAGE_ID, Packages, files_under
from tests.support import packages as pkg


def test_the_same_push_twice_downloads_once(packages: Packages, file_server: Any) -> None:
    archive = pkg.package()
    packages.push(archive)
    generation = packages.row().generation

    again = packages.push(archive)

    assert again.body["Code"] == 0
    assert again.body["Data"] == {"AlgoFilePackageID": PACKAGE_ID}
    assert len(file_server.requests) == 1
    assert packages.row().generation == generation
    assert packages.row().status == 2


def test_the_same_push_while_the_first_is_still_queued_is_not_queued_again(
    packages: Packages, settings: Any
) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"
    archive = pkg.package()
    packages.push(archive)
    packages.push(archive)

    assert packages.row().generation == 1
    assert packages.row().status == 0


def test_a_push_with_a_different_url_is_409_and_keeps_the_package(
    packages: Packages, file_server: Any
) -> None:
    packages.push(pkg.package())

    response = packages.push(pkg.package(version="2.0"), name="other.tar", expect=409)

    assert response.body["Code"] == 40900
    assert "different Url or MD5" in response.body["Message"]
    assert "AlgoFilePackageID" in response.body["Message"]
    row = packages.row()
    assert row.status == 2
    assert row.version == "1.2.0"
    assert [r["path"] for r in file_server.requests] == ["package.tar"]


def test_a_push_with_a_different_md5_is_409(packages: Packages) -> None:
    archive = pkg.package()
    packages.push(archive)

    packages.push(archive, md5="f" * 32, expect=409)


def test_a_cad_push_with_a_different_url_answers_409_with_a_string_code(
    packages: Packages,
) -> None:
    packages.push(pkg.package())
    url = packages.serve("other.tar", pkg.package())

    response = packages.api.post(
        "/CAD/Machine/AlgoFilePackages", {"AlgoFilePackageID": PACKAGE_ID, "Url": url}
    )

    assert response.status_code == 409
    assert response.body["Code"] == "40900"


def test_re_pushing_a_package_in_status_4_retries_the_download(
    packages: Packages, file_server: Any
) -> None:
    archive = pkg.package()
    file_server.fault("package.tar", pkg_fault_404())
    packages.push(archive)
    assert packages.detail()["Status"] == 4

    packages.push(archive)

    data = packages.detail()
    assert data["Status"] == 2
    assert data["StatusReason"] == ""
    assert packages.row().generation == 2
    assert len(file_server.requests) == 2


def test_a_package_in_status_4_may_be_pushed_again_with_another_url(packages: Packages) -> None:
    packages.push(pkg.package(), md5="0" * 32)
    assert packages.detail()["Status"] == 4

    packages.push(pkg.package(version="2.0"), name="fixed.tar")

    data = packages.detail()
    assert data["Status"] == 2
    assert data["Version"] == "2.0"


def test_only_the_current_generation_is_kept_on_disk(packages: Packages, store: Path) -> None:
    packages.push(pkg.package(), md5="0" * 32)
    packages.push(pkg.package(), name="fixed.tar")

    assert sorted(p.name for p in (store / PACKAGE_ID).iterdir()) == ["g2"]


def pkg_fault_404() -> Any:
    from tests.support.http_server import Fault

    return Fault(status=404, times=1)


@pytest.mark.parametrize(
    "uri", ["/CAP/AlgoFilePackages/{id}", "/CAD/Machine/AlgoFilePackages/{id}"]
)
def test_delete_removes_the_row_and_the_files_and_repeating_it_succeeds(
    packages: Packages, store: Path, uri: str
) -> None:
    packages.push(pkg.package(with_executable=False))
    packages.push_exec(pkg.artifact())
    assert packages.detail()["Status"] == 2
    assert files_under(store / PACKAGE_ID)

    first = packages.api.delete(uri.format(id=PACKAGE_ID))
    second = packages.api.delete(uri.format(id=PACKAGE_ID))

    code = "0" if uri.startswith("/CAD/") else 0
    for response in (first, second):
        assert response.status_code == 200, response.body
        assert response.body["Code"] == code
        assert "Data" not in response.body or response.body["Data"] in ({}, None)
    assert not AlgoFilePackage.objects.filter(pk=PACKAGE_ID).exists()
    assert not ExecFile.objects.exists()
    assert not (store / PACKAGE_ID).exists()
    assert packages.api.get(f"/CAP/AlgoFilePackages/{PACKAGE_ID}").status_code == 404


def test_a_package_deleted_can_be_pushed_again(packages: Packages) -> None:
    archive = pkg.package()
    packages.push(archive)
    packages.api.delete(f"/CAP/AlgoFilePackages/{PACKAGE_ID}")

    packages.push(archive)

    assert packages.detail()["Status"] == 2


def test_deleting_a_package_while_it_downloads_leaves_no_files(
    packages: Packages, settings: Any, store: Path
) -> None:
    from algorithms import jobs

    settings.FACILITY_QUEUE_MODE = "manual"
    packages.push(pkg.package())
    generation = packages.row().generation
    packages.api.delete(f"/CAP/AlgoFilePackages/{PACKAGE_ID}")

    jobs.download_package(PACKAGE_ID, generation)

    assert files_under(store) == set()
    assert not AlgoFilePackage.objects.exists()


@pytest.mark.parametrize(
    ("method", "uri", "code"),
    [
        ("get", "/CAP/AlgoFilePackages/never-seen", 40400),
        ("delete", "/CAP/AlgoFilePackages/never-seen", 40400),
        ("delete", "/CAD/Machine/AlgoFilePackages/never-seen", "40400"),
    ],
)
def test_an_id_never_seen_is_a_404_envelope(api: Any, method: str, uri: str, code: Any) -> None:
    response = getattr(api, method)(uri, **{"X-Request-ID": "req-404"})

    assert response.status_code == 404
    assert response.body["Code"] == code
    assert "never-seen" in response.body["Message"]
    assert "AlgoFilePackageID" in response.body["Message"]
    assert response.body["RequestID"] == "req-404"


@pytest.mark.parametrize(
    ("method", "uri", "code"),
    [
        ("post", "/CAP/AlgoFilePackages", 40100),
        ("post", "/CAP/AlgoFilePackages:search", 40100),
        ("post", "/CAP/AlgoFilePackages:pushExecFile", 40100),
        ("get", f"/CAP/AlgoFilePackages/{PACKAGE_ID}", 40100),
        ("delete", f"/CAP/AlgoFilePackages/{PACKAGE_ID}", 40100),
        ("post", "/CAD/Machine/AlgoFilePackages", "40100"),
        ("delete", f"/CAD/Machine/AlgoFilePackages/{PACKAGE_ID}", "40100"),
    ],
)
def test_no_credential_is_a_401_envelope(
    anonymous_api: Any, method: str, uri: str, code: Any
) -> None:
    body = {"AlgoFilePackageID": PACKAGE_ID, "Url": "http://127.0.0.1:9/x.tar"}
    call = getattr(anonymous_api, method)
    response = call(uri, body) if method == "post" else call(uri)

    assert response.status_code == 401
    assert response.body["Code"] == code
    assert response.body["Message"]
    assert response.body["RequestID"]
    assert not AlgoFilePackage.objects.exists()


def test_a_wrong_credential_is_a_401_envelope(api: Any) -> None:
    api.token = "not-a-real-token"

    response = api.post("/CAP/AlgoFilePackages:search", {})

    assert response.status_code == 401
    assert response.body["Code"] == 40100
