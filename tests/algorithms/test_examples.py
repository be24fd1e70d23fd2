"""The standard's example request bodies (tests/support/examples), sent as
written. Their Urls name hosts such as `xx` that must never be looked up, so
the queue is `manual`: the answer and the stored row are checked, no
download runs."""

from __future__ import annotations

from typing import Any

import pytest

from algorithms.models import AlgoFilePackage, ExecFile
from tests.support.examples import example

ID = "1101150192508600000120231012203630000102"


@pytest.fixture(autouse=True)
def _no_downloads(settings: Any) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"


def test_i1_d_with_its_stray_md5_space_is_accepted_as_written(api: Any) -> None:
    body = example("I.1-d")
    assert "MD5 " in body

    response = api.post("/CAP/AlgoFilePackages", body)

    assert response.status_code == 200, response.body
    assert response.body["Code"] == 0
    assert response.body["Data"] == {"AlgoFilePackageID": ID}
    row = AlgoFilePackage.objects.get(pk=ID)
    assert row.md5 == "d577273ff885c3f84dadb8578bb41399"
    assert row.url == "https://xx/xx.tar"
    assert row.status == 0
    assert row.source == "cap"


def test_i3_d_is_accepted_as_written(api: Any) -> None:
    api.post("/CAP/AlgoFilePackages", example("I.1-d"))

    response = api.post("/CAP/AlgoFilePackages:search", example("I.3-d"))

    assert response.status_code == 200, response.body
    assert response.body["Code"] == 0
    data = response.body["Data"]
    assert (data["PageNumber"], data["PageSize"], data["TotalSize"]) == (1, 1, 1)
    assert data["Records"] == [
        {
            "AlgoFilePackageID": ID,
            "Name": "",
            "Version": "",
            "Author": "",
            "Description": "",
            "Status": 0,
        }
    ]


def test_i8_e_with_type_image_capitalised_is_accepted_as_written(api: Any) -> None:
    api.post("/CAP/AlgoFilePackages", example("I.1-d"))
    body = example("I.8-e")
    assert body["Type"] == "Image"

    response = api.post("/CAP/AlgoFilePackages:pushExecFile", body)

    assert response.status_code == 200, response.body
    assert response.body["Code"] == 0
    assert response.body["Data"] == {"AlgoFilePackageID": ID}
    exec_file = ExecFile.objects.get(package_id=ID)
    assert exec_file.kind == "image"
    assert exec_file.md5 == "d577273ff885c3f84dadb8578bb41620"
    assert exec_file.url == "http://127.0.0.1/xxx.tar"


def test_i8_e_for_an_unknown_package_is_404(api: Any) -> None:
    response = api.post("/CAP/AlgoFilePackages:pushExecFile", example("I.8-e"))

    assert response.status_code == 404
    assert response.body["Code"] == 40400
    assert "AlgoFilePackageID" in response.body["Message"]
    assert ExecFile.objects.count() == 0


def test_b1_d_without_its_required_package_id_is_refused_naming_it(api: Any) -> None:
    response = api.post("/CAD/Machine/AlgoFilePackages", example("B.1-d"))

    assert response.status_code == 400
    assert response.body["Code"] == "40000"
    assert "AlgoFilePackageID: is required" in response.body["Message"]
    assert AlgoFilePackage.objects.count() == 0


def test_b1_d_with_the_package_id_added_is_accepted(api: Any) -> None:
    body = {**example("B.1-d"), "AlgoFilePackageID": ID}
    body["Url"] = "https://127.0.0.1:8443/xx"

    response = api.post("/CAD/Machine/AlgoFilePackages", body)

    assert response.status_code == 200, response.body
    assert response.body == {
        "Code": "0",
        "Message": "success",
        "RequestID": response.body["RequestID"],
    }
    row = AlgoFilePackage.objects.get(pk=ID)
    assert (row.source, row.auth_address, row.license_file) == (
        "cad",
        "127.0.0.1:8080",
        "/auth_license.txt",
    )


def test_the_example_spelling_id_for_the_package_id_is_accepted(api: Any) -> None:
    response = api.post("/CAP/AlgoFilePackages", {"ID": ID, "Url": "http://127.0.0.1/p.tar"})

    assert response.status_code == 200, response.body
    assert AlgoFilePackage.objects.filter(pk=ID).exists()
