"""表28, 表30, 表31: a good package is fetched over real HTTP, unpacked, read,
and shown by detail and search."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from algorithms.choices import TransferState
from tests.algorithms.conftest import PACKAGE_ID, Packages
from tests.support import packages as pkg


@pytest.mark.parametrize("fmt", ["tar", "tar.gz", "tar.bz2", "tar.xz", "zip"])
def test_a_good_package_reaches_status_2_in_every_archive_format(
    packages: Packages, fmt: str
) -> None:
    response = packages.push(pkg.package(fmt=fmt), name=f"package.{fmt}")

    assert response.body["Code"] == 0
    assert response.body["Data"] == {"AlgoFilePackageID": PACKAGE_ID}
    row = packages.row()
    assert row.status == 2, row.status_reason
    assert row.transfer_state == TransferState.DONE
    assert row.actual_md5 == row.md5
    assert (Path(row.content_dir) / "bin/detector").read_bytes() == pkg.EXECUTABLE


def test_detail_shows_what_algo_yaml_declares(packages: Packages) -> None:
    packages.push(pkg.package())

    data = packages.detail()

    assert data["AlgoFilePackageID"] == PACKAGE_ID
    assert data["Name"] == "helmet-detector"
    assert data["Version"] == "1.2.0"
    assert data["Author"] == "acme"
    assert data["Description"] == "detects helmets"
    assert data["Status"] == 2
    assert data["Tags"] == ["safety", "helmet"]
    assert data["Bin"] == {"Type": "artifact", "RemoteUri": "", "LocalUri": "bin/detector"}
    assert data["AlgoRuntime"] == {
        "Cmd": "./bin/detector --serve",
        "Env": [{"Name": "_FILELOG_PATH", "Value": "/Data/limbo-log"}],
        "Xpu": [
            {
                "Quota": 0.5,
                "Limit": 1.0,
                "Vendor": "NVIDIA",
                "Accelerator": "2070",
                "Capacities": {
                    "Stream_Video_Quota": 6,
                    "Stream_Capture_Quota": 0,
                    "Analyze_Quota": 2,
                },
                "Resolution": "PIXELS_200W",
            }
        ],
    }
    assert data["Progress"] == 100


def test_algo_yaml_in_the_spelling_of_the_standards_example_is_read(packages: Packages) -> None:
    packages.push(pkg.package(example_spelling=True))

    data = packages.detail()

    assert data["Status"] == 2, data["StatusReason"]
    assert data["Bin"] == {"Type": "artifact", "RemoteUri": "", "LocalUri": "bin/detector"}
    assert data["AlgoRuntime"]["Cmd"] == "./bin/detector --serve"
    assert data["AlgoRuntime"]["Xpu"][0]["Capacities"]["Stream_Video_Quota"] == 6


def test_a_tar_whose_last_member_is_a_zip_is_read_as_a_tar(packages: Packages) -> None:
    weights = pkg.zip_of({"weights.txt": b"0.1 0.2 0.3"}).data
    archive = pkg.tar_of(
        {
            "algo.yaml": pkg.manifest_text(),
            "bin/detector": pkg.EXECUTABLE,
            "models/weights.zip": weights,
        }
    )

    packages.push(archive)

    row = packages.row()
    assert row.status == 2, row.status_reason
    assert (Path(row.content_dir) / "models/weights.zip").read_bytes() == weights


def test_a_package_inside_one_top_directory_is_found(packages: Packages) -> None:
    archive = pkg.tar_of(
        {"helmet/algo.yaml": pkg.manifest_text(), "helmet/bin/detector": pkg.EXECUTABLE}
    )
    packages.push(archive)

    assert packages.row().status == 2


def test_a_push_is_answered_before_the_download_with_status_0(
    packages: Packages, settings: Any
) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"
    packages.push(pkg.package(), md5="")

    data = packages.detail()

    assert data["Status"] == 0
    assert data["Progress"] == 0
    assert data["Bin"] == {"Type": "", "RemoteUri": "", "LocalUri": ""}


def test_the_pushed_name_is_shown_until_algo_yaml_is_read(
    packages: Packages, settings: Any
) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"
    url = packages.serve("p.tar", pkg.package())
    packages.api.post(
        "/CAP/AlgoFilePackages", {"AlgoFilePackageID": "p1", "Url": url, "Name": "pushed name"}
    )

    assert packages.detail("p1")["Name"] == "pushed name"


def test_search_filters_by_name_and_pages(packages: Packages) -> None:
    for index in range(5):
        name = f"helmet-{index}" if index < 3 else f"smoke-{index}"
        packages.push(pkg.package(name=name), package_id=f"pkg-{index}", name=f"p{index}.tar")

    everything = packages.api.post("/CAP/AlgoFilePackages:search", {})
    assert everything.status_code == 200
    assert everything.body["Code"] == 0
    assert everything.body["Data"]["TotalSize"] == 5
    assert everything.body["Data"]["PageNumber"] == 1
    assert everything.body["Data"]["PageSize"] == 20

    helmets = packages.api.post(
        "/CAP/AlgoFilePackages:search", {"Name": "HELMET", "PageNumber": 2, "PageSize": 2}
    )
    data = helmets.body["Data"]
    assert data["TotalSize"] == 3
    assert data["PageNumber"] == 2
    assert data["PageSize"] == 2
    assert len(data["Records"]) == 1
    record = data["Records"][0]
    assert set(record) == {
        "AlgoFilePackageID",
        "Name",
        "Version",
        "Author",
        "Description",
        "Status",
    }
    assert record["Name"].startswith("helmet-")
    assert record["Status"] == 2

    seen = set()
    for page in (1, 2):
        body = {"Name": "helmet", "PageNumber": page, "PageSize": 2}
        records = packages.api.post("/CAP/AlgoFilePackages:search", body).body["Data"]["Records"]
        seen |= {r["AlgoFilePackageID"] for r in records}
    assert seen == {"pkg-0", "pkg-1", "pkg-2"}


def test_search_past_the_last_page_is_empty(packages: Packages) -> None:
    packages.push(pkg.package())

    data = packages.api.post(
        "/CAP/AlgoFilePackages:search", {"PageNumber": 9, "PageSize": 10}
    ).body["Data"]

    assert data["TotalSize"] == 1
    assert data["Records"] == []


def test_a_cad_push_downloads_the_same_way(packages: Packages) -> None:
    url = packages.serve("cad.tar", pkg.package())

    response = packages.api.post(
        "/CAD/Machine/AlgoFilePackages",
        {"AlgoFilePackageID": "cad-1", "Url": url, "AuthAddress": "127.0.0.1:8080"},
    )

    assert response.status_code == 200
    assert response.body["Code"] == "0"
    row = packages.row("cad-1")
    assert row.status == 2
    assert row.source == "cad"
    assert row.auth_address == "127.0.0.1:8080"


def test_search_finds_a_package_by_its_pushed_name_before_algo_yaml_is_read(
    packages: Packages, settings: Any
) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"
    url = packages.serve("p.tar", pkg.package())
    packages.api.post(
        "/CAP/AlgoFilePackages", {"AlgoFilePackageID": "p1", "Url": url, "Name": "Smoke Alarm"}
    )

    records = packages.api.post("/CAP/AlgoFilePackages:search", {"Name": "smoke"}).body["Data"][
        "Records"
    ]

    assert [(r["AlgoFilePackageID"], r["Name"], r["Status"]) for r in records] == [
        ("p1", "Smoke Alarm", 0)
    ]


def test_a_package_that_has_run_shows_status_3_and_a_repush_keeps_it(packages: Packages) -> None:
    archive = pkg.package()
    packages.push(archive)
    row = packages.row()
    row.mark_has_run()
    row.save()

    assert packages.detail()["Status"] == 3
    packages.push(archive)
    assert packages.detail()["Status"] == 3
