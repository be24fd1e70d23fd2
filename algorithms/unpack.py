"""Safe unpacking of package archives (tar, tar.gz/bz2/xz, zip).

Nothing is ever written outside `dest`: member names may not be absolute or
contain `..`; links must point inside the tree; devices, FIFOs and other
special members are refused; the unpacked size and member count are bounded
(zip bombs); files are written by us with O_NOFOLLOW under a parent whose real
path is checked, never by the archive library's own extract."""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

COPY_CHUNK = 1024 * 1024


class UnsafeArchive(Exception):
    """The archive was refused; the message says which member and why."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_members: int


@dataclass
class _Member:
    name: str
    kind: str  # file | dir | symlink | hardlink
    size: int
    mode: int
    link: str
    open: object  # callable returning a binary stream, for files


def _clean_name(raw: str) -> str:
    if "\x00" in raw:
        raise UnsafeArchive(f"{raw!r}: NUL byte in member name")
    name = raw.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise UnsafeArchive(f"{raw}: absolute path")
    parts = [part for part in PurePosixPath(name).parts if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise UnsafeArchive(f"{raw}: path contains '..'")
    return "/".join(parts)


def _tar_members(archive: tarfile.TarFile) -> Iterator[_Member]:
    for info in archive:
        if info.isreg():
            kind = "file"
        elif info.isdir():
            kind = "dir"
        elif info.issym():
            kind = "symlink"
        elif info.islnk():
            kind = "hardlink"
        elif info.ischr() or info.isblk():
            raise UnsafeArchive(f"{info.name}: device files are not allowed")
        elif info.isfifo():
            raise UnsafeArchive(f"{info.name}: FIFOs are not allowed")
        else:
            raise UnsafeArchive(f"{info.name}: unsupported member type")
        yield _Member(
            info.name,
            kind,
            info.size,
            info.mode,
            info.linkname,
            lambda i=info: archive.extractfile(i),
        )


def _zip_members(archive: zipfile.ZipFile) -> Iterator[_Member]:
    for info in archive.infolist():
        # Unix attributes only when the archive was made on Unix (create_system 3);
        # many writers (Python's writestr among them) leave the file-type bits 0
        mode = (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(f"{info.filename}: symbolic links in zip archives are not allowed")
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise UnsafeArchive(f"{info.filename}: special files are not allowed")
        kind = "dir" if info.is_dir() else "file"
        yield _Member(
            info.filename,
            kind,
            info.file_size,
            mode or 0o644,
            "",
            lambda i=info: archive.open(i),
        )


def _inside(root: Path, path: str) -> bool:
    return path == str(root) or path.startswith(str(root) + os.sep)


def _copy_bounded(source: IO[bytes], target: IO[bytes], budget: int, name: str) -> int:
    written = 0
    while chunk := source.read(COPY_CHUNK):
        written += len(chunk)
        if written > budget:
            raise UnsafeArchive(f"{name}: unpacked size passes the limit")
        target.write(chunk)
    return written


def _write(root: Path, member: _Member, budget: int) -> int:
    name = _clean_name(member.name)
    if not name:
        return 0
    target = root / name
    parent_real = os.path.realpath(target.parent)
    if not _inside(root, parent_real):
        raise UnsafeArchive(f"{member.name}: would be written outside the package")
    if member.kind == "dir":
        target.mkdir(parents=True, exist_ok=True)
        if not _inside(root, os.path.realpath(target)):
            raise UnsafeArchive(f"{member.name}: directory leaves the package")
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    if not _inside(root, os.path.realpath(target.parent)):
        raise UnsafeArchive(f"{member.name}: would be written outside the package")
    if target.is_symlink() or target.exists():
        if target.is_dir() and not target.is_symlink():
            raise UnsafeArchive(f"{member.name}: replaces a directory")
        target.unlink()
    if member.kind == "symlink":
        if member.link.startswith("/"):
            raise UnsafeArchive(f"{member.name}: symbolic link to an absolute path")
        resolved = os.path.normpath(os.path.join(parent_real, member.link))
        if not _inside(root, resolved):
            raise UnsafeArchive(f"{member.name}: symbolic link leaves the package")
        os.symlink(member.link, target)
        return 0
    if member.kind == "hardlink":
        source = root / _clean_name(member.link)
        if source.is_symlink() or not source.is_file():
            raise UnsafeArchive(f"{member.name}: hard link to a file not in the package")
        if not _inside(root, os.path.realpath(source)):
            raise UnsafeArchive(f"{member.name}: hard link leaves the package")
        size = source.stat().st_size
        if size > budget:
            raise UnsafeArchive(f"{member.name}: unpacked size passes the limit")
        shutil.copyfile(source, target, follow_symlinks=False)
        return size
    if member.size > budget:
        raise UnsafeArchive(f"{member.name}: unpacked size passes the limit")
    mode = 0o755 if member.mode & 0o111 else 0o644
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out, member.open() as stream:  # type: ignore[operator]
        return _copy_bounded(stream, out, budget, member.name)


def _final_sweep(root: Path) -> None:
    """Chains of links can leave the tree even when each looked fine alone."""
    for dirpath, dirnames, filenames in os.walk(root):
        for entry in (*dirnames, *filenames):
            path = os.path.join(dirpath, entry)
            if os.path.islink(path) and not _inside(root, os.path.realpath(path)):
                raise UnsafeArchive(
                    f"{os.path.relpath(path, root)}: symbolic link leaves the package"
                )


ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _is_zip(path: Path) -> bool:
    """A zip starts with a local header (or is an empty zip's end record).
    zipfile.is_zipfile looks for an end record near the end of the file, so it
    also says yes to a tar whose last member is a zip (a model, say)."""
    with path.open("rb") as handle:
        return handle.read(4) in ZIP_MAGIC


def extract(archive_path: Path, dest: Path, limits: Limits) -> int:
    """Unpack `archive_path` into `dest` (created, must not exist); returns
    the bytes written. On refusal `dest` is removed and UnsafeArchive raised."""
    dest.mkdir(parents=True)
    root = Path(os.path.realpath(dest))
    total = 0
    count = 0
    try:
        if _is_zip(archive_path):
            try:
                with zipfile.ZipFile(archive_path) as zf:
                    total, count = _extract_all(_zip_members(zf), root, limits)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
                raise UnsafeArchive(f"archive is damaged: {error}") from None
        else:
            try:
                tf = tarfile.open(archive_path, mode="r:*")  # noqa: SIM115 - closed below
            except (tarfile.TarError, OSError, EOFError) as error:
                raise UnsafeArchive(f"not a tar, tar.gz or zip archive ({error})") from None
            with tf:
                try:
                    total, count = _extract_all(_tar_members(tf), root, limits)
                except (tarfile.TarError, EOFError, OSError) as error:
                    raise UnsafeArchive(f"archive is damaged: {error}") from None
        if count == 0:
            raise UnsafeArchive("archive is empty")
        _final_sweep(root)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    return total


def _extract_all(members: Iterator[_Member], root: Path, limits: Limits) -> tuple[int, int]:
    total = 0
    count = 0
    for member in members:
        count += 1
        if count > limits.max_members:
            raise UnsafeArchive(f"archive has more than {limits.max_members} members")
        total += _write(root, member, limits.max_bytes - total)
    return total, count


def is_docker_image_archive(path: Path) -> bool:
    """A `docker save` tar carries manifest.json (or an OCI index.json)."""
    try:
        with tarfile.open(path, mode="r:*") as tf:
            for info in tf:
                if _clean_name(info.name) in ("manifest.json", "index.json"):
                    return True
    except (tarfile.TarError, OSError, EOFError, UnsafeArchive):
        return False
    return False
