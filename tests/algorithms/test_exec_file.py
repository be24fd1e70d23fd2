"""表32: a package without its executable (Status 1) is completed by pushing
the executable on its own, as an `artifact` archive or an `image` tar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from algorithms.models import ExecFile
from tests.algorithms.conftest import PACKAGE_ID, Packages
from tests.support import packages as pkg


def test_a_package_without_its_executable_waits_in_status_1(packages: Packages) -> None:
    packages.push(pkg.package(with_executable=False))

    data = packages.detail()

    assert data["Status"] == 1
    assert data["StatusReason"] == ""
    assert data["Bin"]["LocalUri"] == "bin/detector"


def test_an_artifact_exec_file_completes_a_status_1_package_to_2(packages: Packages) -> None:
    packages.push(pkg.package(with_executable=False))

    response = packages.push_exec(pkg.artifact("bin/detector"), kind="artifact")

    assert response.status_code == 200, response.body
    assert response.body["Code"] == 0
    assert response.body["Data"] == {"AlgoFilePackageID": PACKAGE_ID}
    assert packages.detail()["Status"] == 2
    exec_file = ExecFile.objects.get(package_id=PACKAGE_ID)
    assert (Path(exec_file.path) / "bin/detector").read_bytes() == pkg.EXECUTABLE


def test_an_image_exec_file_completes_a_status_1_package_to_2(packages: Packages) -> None:
    packages.push(pkg.package(with_executable=False, bin_type="image", local_uri=""))

    image = pkg.image()
    response = packages.push_exec(image, kind="image", name="image.tar")

    assert response.status_code == 200, response.body
    assert packages.detail()["Status"] == 2
    exec_file = ExecFile.objects.get(package_id=PACKAGE_ID)
    assert exec_file.kind == "image"
    assert Path(exec_file.path).read_bytes() == image.data


def test_an_image_type_written_capitalised_is_accepted(packages: Packages) -> None:
    packages.push(pkg.package(with_executable=False, bin_type="image", local_uri=""))

    response = packages.push_exec(pkg.image(), kind="Image")

    assert response.status_code == 200, response.body
    assert packages.detail()["Status"] == 2


def test_an_image_that_is_not_a_docker_save_tar_ends_in_status_4(packages: Packages) -> None:
    packages.push(pkg.package(with_executable=False, bin_type="image", local_uri=""))

    packages.push_exec(pkg.tar_of({"hello.txt": b"hi"}), kind="image")

    data = packages.detail()
    assert data["Status"] == 4
    assert "manifest.json" in data["StatusReason"]


def test_exec_type_not_matching_algo_yaml_bin_type_is_409(packages: Packages) -> None:
    packages.push(pkg.package(with_executable=False, bin_type="artifact"))

    response = packages.push_exec(pkg.image(), kind="image")

    assert response.status_code == 409
    assert response.body["Code"] != 0
    assert "Type" in response.body["Message"]
    assert "artifact" in response.body["Message"]
    assert packages.detail()["Status"] == 1


def test_exec_file_with_wrong_md5_puts_the_package_in_status_4_with_a_reason(
    packages: Packages,
) -> None:
    packages.push(pkg.package(with_executable=False))

    response = packages.push_exec(pkg.artifact(), md5="0" * 32)

    assert response.status_code == 200
    data = packages.detail()
    assert data["Status"] == 4
    assert "MD5" in data["StatusReason"]
    assert "0" * 32 in data["StatusReason"]


def test_an_artifact_without_the_declared_local_uri_ends_in_status_4(packages: Packages) -> None:
    packages.push(pkg.package(with_executable=False, local_uri="bin/detector"))

    packages.push_exec(pkg.artifact("bin/other"))

    data = packages.detail()
    assert data["Status"] == 4
    assert "bin/detector" in data["StatusReason"]


def test_a_good_exec_file_pushed_after_a_bad_one_recovers_the_package(packages: Packages) -> None:
    packages.push(pkg.package(with_executable=False))
    packages.push_exec(pkg.artifact(), md5="0" * 32)
    assert packages.detail()["Status"] == 4

    packages.push_exec(pkg.artifact(), name="exec-2.tar.gz")

    assert packages.detail()["Status"] == 2


def test_exec_file_pushed_for_an_unknown_package_is_404(packages: Packages) -> None:
    response = packages.push_exec(pkg.artifact(), package_id="never-pushed")

    assert response.status_code == 404
    assert response.body["Code"] != 0
    assert "AlgoFilePackageID" in response.body["Message"]
    assert set(response.body) == {"Code", "Message", "RequestID"}


def test_exec_file_pushed_before_the_package_is_fetched_is_checked_afterwards(
    packages: Packages, settings: Any
) -> None:
    from algorithms import jobs
    from algorithms.models import AlgoFilePackage

    settings.FACILITY_QUEUE_MODE = "manual"
    packages.push(pkg.package(with_executable=False))
    packages.push_exec(pkg.artifact())
    assert packages.detail()["Status"] == 0

    exec_file = ExecFile.objects.get(package_id=PACKAGE_ID)
    jobs.download_exec_file(exec_file.pk, exec_file.generation)
    package = AlgoFilePackage.objects.get(pk=PACKAGE_ID)
    jobs.download_package(PACKAGE_ID, package.generation)

    assert packages.detail()["Status"] == 2


def test_an_exec_file_of_the_wrong_type_that_arrived_first_fails_the_package(
    packages: Packages, settings: Any
) -> None:
    from algorithms import jobs
    from algorithms.models import AlgoFilePackage

    settings.FACILITY_QUEUE_MODE = "manual"
    packages.push(pkg.package(with_executable=False, bin_type="artifact"))
    packages.push_exec(pkg.image(), kind="image")
    exec_file = ExecFile.objects.get(package_id=PACKAGE_ID)
    jobs.download_exec_file(exec_file.pk, exec_file.generation)
    jobs.download_package(PACKAGE_ID, AlgoFilePackage.objects.get(pk=PACKAGE_ID).generation)

    data = packages.detail()
    assert data["Status"] == 4
    assert "Bin.Type" in data["StatusReason"]


def test_the_same_exec_file_pushed_twice_is_fetched_once(
    packages: Packages, file_server: Any
) -> None:
    packages.push(pkg.package(with_executable=False))
    archive = pkg.artifact()
    packages.push_exec(archive, name="exec.tar.gz")
    packages.push_exec(archive, name="exec.tar.gz")

    fetches = [r for r in file_server.requests if r["path"] == "exec.tar.gz"]
    assert len(fetches) == 1
    assert packages.detail()["Status"] == 2


def test_an_artifact_with_a_dotdot_member_ends_in_status_4_and_writes_nothing_outside(
    packages: Packages, tmp_path: Path
) -> None:
    packages.push(pkg.package(with_executable=False))
    store = packages.row().store_dir

    packages.push_exec(pkg.tar_of({"bin/detector": pkg.EXECUTABLE, "../../../escaped": b"x"}))

    data = packages.detail()
    assert data["Status"] == 4
    assert "'..'" in data["StatusReason"]
    assert not [p for p in tmp_path.rglob("escaped*")]
    assert not [p for p in store.iterdir() if p.name.startswith("exec-")]
