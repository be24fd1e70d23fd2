"""Real package archives for tests: tar, tar.gz and zip with an algo.yaml
(the fields of 表I.7), hostile archives (`..`, absolute paths, escaping links,
devices), and `docker save`-like image tars for the `image` exec file."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from typing import Any

import yaml

EXECUTABLE = b"#!/bin/sh\necho detecting\n"


@dataclass(frozen=True)
class Built:
    data: bytes
    md5: str


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def built(data: bytes) -> Built:
    return Built(data, md5_of(data))


def manifest(
    *,
    name: str = "helmet-detector",
    version: str = "1.2.0",
    author: str = "acme",
    bin_type: str = "artifact",
    local_uri: str = "bin/detector",
    example_spelling: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """An algo.yaml document. `example_spelling` writes it as the standard's
    表I.7 example does (`remote_uri`, `local_uri`, `algo_runtime`, `cmd`)."""
    xpu = {
        "Quota": 0.5,
        "Limit": 1,
        "Vendor": "NVIDIA",
        "Accelerator": "2070",
        "Capacities": {"Stream_Video_Quota": 6, "Stream_Capture_Quota": 0, "Analyze_Quota": 2},
        "Resolution": "PIXELS_200W",
    }
    env = [{"Name": "_FILELOG_PATH", "Value": "/Data/limbo-log"}]
    if example_spelling:
        document: dict[str, Any] = {
            "Name": name,
            "Version": version,
            "Author": author,
            "Description": "detects helmets",
            "Tags": ["safety", "helmet"],
            "Bin": {"Type": bin_type.capitalize(), "remote_uri": "", "local_uri": local_uri},
            "algo_runtime": {"cmd": "./bin/detector --serve", "Env": env, "Xpu": [xpu]},
        }
    else:
        document = {
            "Name": name,
            "Version": version,
            "Author": author,
            "Description": "detects helmets",
            "Tags": ["safety", "helmet"],
            "Bin": {"Type": bin_type, "RemoteUri": "", "LocalUri": local_uri},
            "AlgoRuntime": {"Cmd": "./bin/detector --serve", "Env": env, "Xpu": [xpu]},
        }
    document.update(overrides)
    return document


def manifest_text(document: dict[str, Any] | None = None, **kwargs: Any) -> bytes:
    return yaml.safe_dump(document or manifest(**kwargs), sort_keys=False).encode()


def _tar(entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]], mode: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as tf:  # type: ignore[call-overload]
        for entry in entries:
            if isinstance(entry, tuple):
                info, data = entry
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(entry)
    return buffer.getvalue()


def file_info(name: str, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info


def link_info(name: str, target: str, *, hard: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info


def special_info(name: str, kind: bytes = tarfile.CHRTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = 1, 3
    return info


def tar_of(
    files: dict[str, bytes],
    *,
    gz: bool = False,
    compression: str = "",
    extra: list[Any] | None = None,
) -> Built:
    """A tar holding `files` (name → bytes, executables by name under bin/),
    followed by `extra` raw members; compressed with `compression` (gz, bz2,
    xz) or, with `gz`, gzip."""
    entries: list[Any] = []
    for name, data in files.items():
        entries.append((file_info(name, 0o755 if name.startswith("bin/") else 0o644), data))
    entries.extend(extra or [])
    compression = compression or ("gz" if gz else "")
    return built(_tar(entries, f"w:{compression}" if compression else "w"))


def zip_of(files: dict[str, bytes]) -> Built:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return built(buffer.getvalue())


def package(
    *,
    fmt: str = "tar",
    with_executable: bool = True,
    document: dict[str, Any] | None = None,
    extra_files: dict[str, bytes] | None = None,
    **kwargs: Any,
) -> Built:
    """A whole package: algo.yaml (+ bin/detector when `with_executable`)."""
    doc = document or manifest(**kwargs)
    files = {"algo.yaml": manifest_text(doc)}
    if with_executable:
        files["bin/detector"] = EXECUTABLE
    files.update(extra_files or {})
    if fmt == "zip":
        return zip_of(files)
    return tar_of(files, compression=fmt.partition(".")[2])


def artifact(local_uri: str = "bin/detector", *, fmt: str = "tar.gz") -> Built:
    """The `artifact` exec file: an archive holding the executable."""
    files = {local_uri: EXECUTABLE}
    return zip_of(files) if fmt == "zip" else tar_of(files, gz=fmt == "tar.gz")


def image(repo_tag: str = "acme/helmet:1.2.0") -> Built:
    """A `docker save`-like tar: manifest.json, a config and one layer."""
    layer = _tar([(file_info("app/detector", 0o755), EXECUTABLE)], "w")
    layer_digest = hashlib.sha256(layer).hexdigest()
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    top = json.dumps(
        [{"Config": config_name, "RepoTags": [repo_tag], "Layers": [f"{layer_digest}/layer.tar"]}]
    ).encode()
    return tar_of(
        {
            "manifest.json": top,
            config_name: config,
            f"{layer_digest}/layer.tar": layer,
            "repositories": json.dumps({repo_tag.split(":")[0]: {"1.2.0": layer_digest}}).encode(),
        }
    )
