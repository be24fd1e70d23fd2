"""Hostile and broken archives end in Status 4 with the reason, and nothing
is written outside the package's own directory of the store."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.algorithms.conftest import Packages, files_under
from tests.support import packages as pkg

GOOD = {"algo.yaml": pkg.manifest_text(), "bin/detector": pkg.EXECUTABLE}


@pytest.fixture
def refused(packages: Packages, store: Path, tmp_path: Path) -> Any:
    """Push an archive, expect Status 4 whose reason contains `words`, and
    check that no file was left anywhere: not in the store, not beside it."""

    def beside() -> set[str]:
        mine = tmp_path.name + "/"
        return {path for path in files_under(tmp_path.parent) if not path.startswith(mine)}

    def check(archive: pkg.Built, *words: str) -> dict[str, Any]:
        before = beside()
        packages.push(archive)
        data = packages.detail()
        assert data["Status"] == 4, data
        for word in words:
            assert word in data["StatusReason"], data["StatusReason"]
        assert files_under(store) == set()
        served = {f"served/{name}" for name in files_under(tmp_path / "served")}
        assert files_under(tmp_path) - served == set()
        assert beside() == before
        return data

    return check


def test_tar_with_a_dotdot_member_ends_in_status_4(refused: Any) -> None:
    archive = pkg.tar_of({**GOOD, "../escaped.txt": b"x"})

    refused(archive, "archive refused", "../escaped.txt", "..")


def test_tar_with_a_deep_dotdot_member_writes_nothing_outside(refused: Any) -> None:
    archive = pkg.tar_of({**GOOD, "bin/../../../../../escaped.txt": b"x"})

    refused(archive, "'..'")


def test_tar_with_an_absolute_member_ends_in_status_4(refused: Any, tmp_path: Path) -> None:
    target = tmp_path / "absolute-escape.txt"
    archive = pkg.tar_of({**GOOD, str(target): b"x"})

    refused(archive, "absolute path")
    assert not target.exists()


def test_tar_with_an_escaping_symlink_ends_in_status_4(refused: Any) -> None:
    archive = pkg.tar_of(
        GOOD,
        extra=[
            pkg.link_info("up", "../../../.."),
            (pkg.file_info("up/escaped.txt"), b"x"),
        ],
    )

    refused(archive, "up", "symbolic link leaves the package")


def test_tar_with_a_symlink_to_an_absolute_path_ends_in_status_4(
    refused: Any, tmp_path: Path
) -> None:
    archive = pkg.tar_of(
        GOOD,
        extra=[
            pkg.link_info("abs", str(tmp_path)),
            (pkg.file_info("abs/absolute-escape.txt"), b"x"),
        ],
    )

    refused(archive, "symbolic link to an absolute path")
    assert not (tmp_path / "absolute-escape.txt").exists()


def test_tar_with_a_chain_of_links_leaving_the_package_ends_in_status_4(refused: Any) -> None:
    # each link alone stays inside the tree; followed one after the other they leave it
    archive = pkg.tar_of(
        GOOD,
        extra=[
            pkg.link_info("a/b/c", "."),
            pkg.link_info("a/b/d", "c/../../.."),
        ],
    )

    refused(archive, "leaves the package")


def test_tar_with_a_hard_link_to_outside_ends_in_status_4(refused: Any) -> None:
    archive = pkg.tar_of(
        GOOD, extra=[pkg.link_info("passwd", "../../../../../etc/passwd", hard=True)]
    )

    refused(archive, "passwd")


def test_tar_with_a_hard_link_to_an_absolute_path_ends_in_status_4(refused: Any) -> None:
    archive = pkg.tar_of(GOOD, extra=[pkg.link_info("passwd", "/etc/passwd", hard=True)])

    refused(archive, "passwd", "absolute path")


def test_tar_with_a_device_file_ends_in_status_4(refused: Any) -> None:
    archive = pkg.tar_of(GOOD, extra=[pkg.special_info("dev/null")])

    refused(archive, "dev/null", "device")


def test_tar_with_a_fifo_ends_in_status_4(refused: Any) -> None:
    archive = pkg.tar_of(GOOD, extra=[pkg.special_info("pipe", tarfile.FIFOTYPE)])

    refused(archive, "pipe", "FIFO")


def test_zip_with_a_dotdot_member_ends_in_status_4(refused: Any) -> None:
    archive = pkg.zip_of({**GOOD, "../escaped.txt": b"x"})

    refused(archive, "escaped.txt", "..")


def test_zip_with_an_absolute_member_ends_in_status_4(refused: Any, tmp_path: Path) -> None:
    target = tmp_path / "absolute-escape.txt"
    info = zipfile.ZipInfo("placeholder")
    info.filename = str(target)  # ZipInfo() would strip the leading '/'
    buffer = pkg.io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in GOOD.items():
            zf.writestr(name, data)
        zf.writestr(info, b"x")

    refused(pkg.built(buffer.getvalue()), "absolute path")
    assert not target.exists()


def test_zip_with_a_symlink_ends_in_status_4(refused: Any) -> None:
    info = zipfile.ZipInfo("up")
    info.create_system = 3
    info.external_attr = (0o120777) << 16
    buffer = pkg.io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in GOOD.items():
            zf.writestr(name, data)
        zf.writestr(info, "../../..")

    refused(pkg.built(buffer.getvalue()), "symbolic links")


def test_links_that_stay_inside_the_package_are_kept(packages: Packages) -> None:
    archive = pkg.tar_of(
        {"algo.yaml": pkg.manifest_text(), "bin/detector-1.2": pkg.EXECUTABLE},
        extra=[
            pkg.link_info("bin/detector", "detector-1.2"),
            pkg.link_info("bin/copy", "bin/detector-1.2", hard=True),
        ],
    )

    packages.push(archive)

    row = packages.row()
    assert row.status == 2, row.status_reason
    content = Path(row.content_dir)
    assert (content / "bin/detector").is_symlink()
    assert (content / "bin/copy").read_bytes() == pkg.EXECUTABLE


def test_an_archive_over_the_unpacked_size_limit_ends_in_status_4(
    refused: Any, settings: Any
) -> None:
    settings.PACKAGE_MAX_UNPACKED_BYTES = 50_000
    archive = pkg.tar_of({**GOOD, "model.bin": bytes(200_000)}, gz=True)
    assert len(archive.data) < 50_000  # small to download, large once unpacked

    refused(archive, "unpacked size")


def test_a_zip_bomb_over_the_unpacked_size_limit_ends_in_status_4(
    refused: Any, settings: Any
) -> None:
    settings.PACKAGE_MAX_UNPACKED_BYTES = 50_000
    buffer = pkg.io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in GOOD.items():
            zf.writestr(name, data)
        zf.writestr("model.bin", bytes(400_000))

    refused(pkg.built(buffer.getvalue()), "unpacked size")


def test_an_archive_with_too_many_members_ends_in_status_4(refused: Any, settings: Any) -> None:
    settings.PACKAGE_MAX_MEMBERS = 5
    archive = pkg.tar_of({**GOOD, **{f"data/{i}": b"" for i in range(10)}})

    refused(archive, "more than 5 members")


def test_a_file_that_is_no_archive_ends_in_status_4(refused: Any) -> None:
    refused(pkg.built(b"this is not an archive at all" * 20), "not a tar")


def test_an_empty_archive_ends_in_status_4(refused: Any) -> None:
    refused(pkg.tar_of({}), "empty")


def test_a_truncated_zip_ends_in_status_4_as_damaged(refused: Any) -> None:
    whole = pkg.package(fmt="zip").data

    refused(pkg.built(whole[: len(whole) // 2]), "damaged")


def test_a_zip_with_a_corrupted_member_ends_in_status_4_as_damaged(refused: Any) -> None:
    whole = pkg.package(fmt="zip").data
    at = whole.index(pkg.EXECUTABLE)
    corrupted = whole[:at] + b"X" + whole[at + 1 :]

    refused(pkg.built(corrupted), "damaged")


def test_a_truncated_tar_gz_ends_in_status_4_as_damaged(refused: Any) -> None:
    whole = pkg.package(fmt="tar.gz", extra_files={"model.bin": bytes(range(256)) * 40}).data

    refused(pkg.built(whole[: len(whole) // 2]), "damaged")
