"""The artifact package is portable: `build_reference_package --form artifact`
writes no path of the build machine into it, and the `local` runtime starts it
by resolving the bare `python3` of its Cmd on the node (FACILITY_ENGINE_PYTHON,
else the facility's own interpreter). Real build, real tarball, real process."""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import tarfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
import yaml

from services.runtime.base import ReplicaHandle, ReplicaSpec, RuntimeError_
from services.runtime.local import LocalRuntime
from tests.reference.conftest import ROOT, build_reference_package


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_artifact(out: Path, *extra: str) -> Path:
    return build_reference_package(out, "portable", *extra)[0]


def machine_paths() -> set[str]:
    """Absolute paths that only make sense on this machine."""
    paths = {str(ROOT), sys.executable, sys.prefix, sys.base_prefix, str(Path.home())}
    paths |= {os.path.realpath(p) for p in list(paths)}
    return {p for p in paths if p not in ("", "/") and len(p) > 4}


def health(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/Health", timeout=2) as resp:
            data: dict[str, Any] = json.loads(resp.read())["Data"]
            return data
    except OSError:
        return None


def wait_health(
    runtime: LocalRuntime, handle: ReplicaHandle, port: int, timeout_s: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        answer = health(port)
        if answer is not None:
            return answer
        time.sleep(0.1)
    raise AssertionError(f"engine on {port} never answered /Health:\n{runtime.logs(handle)}")


def unpack(package: Path, into: Path) -> dict[str, Any]:
    with tarfile.open(package) as tar:
        tar.extractall(into, filter="data")
    document: dict[str, Any] = yaml.safe_load((into / "algo.yaml").read_text())
    return document


def spec_for(workdir: Path, cmd: str, port: int, name: str) -> ReplicaSpec:
    return ReplicaSpec(
        name=name,
        labels={},
        command=shlex.split(cmd),
        env={"ENGINE_PORT": str(port), "ENGINE_HOST": "127.0.0.1", "ENGINE_ID": name},
        workdir=str(workdir),
        port=port,
    )


def test_the_artifact_names_no_path_of_the_build_machine(tmp_path: Path) -> None:
    package = build_artifact(tmp_path / "out")
    needles = machine_paths()
    assert needles, "nothing to look for"
    with tarfile.open(package) as tar:
        members = tar.getmembers()
        assert any(m.name == "engine/__main__.py" for m in members)
        for member in members:
            assert not member.name.startswith("/")
            if not member.isfile():
                continue
            handle = tar.extractfile(member)
            assert handle is not None
            text = handle.read().decode("utf-8", "replace")
            for needle in needles:
                assert needle not in text, f"{member.name} contains {needle}"
            if member.name == "algo.yaml":
                document = yaml.safe_load(text)
    assert document["AlgoRuntime"]["Cmd"] == "python3 -m engine"


def test_the_portable_artifact_starts_with_the_engine_interpreter(
    tmp_path: Path, settings: Any
) -> None:
    """Started from its unpacked folder by the local runtime, as a service's
    replica is: by default with the facility's interpreter, or with
    FACILITY_ENGINE_PYTHON (here a link of its own, so its use is visible)."""
    document = unpack(build_artifact(tmp_path / "out"), tmp_path / "package")
    cmd = document["AlgoRuntime"]["Cmd"]
    runtime = LocalRuntime(tmp_path / "state")
    # a wrapper, not a symlink: a venv's interpreter must be called by its own path
    marker = tmp_path / "wrapper-ran"
    wrapper = tmp_path / "bin" / "engine-python"
    wrapper.parent.mkdir()
    python, mark = shlex.quote(sys.executable), shlex.quote(str(marker))
    wrapper.write_text(f'#!/bin/sh\necho "$@" > {mark}\nexec {python} "$@"\n')
    wrapper.chmod(0o755)
    try:
        settings.ENGINE_PYTHON = ""
        port = free_port()
        handle = runtime.start(spec_for(tmp_path / "package", cmd, port, "portable-default"))
        answer = wait_health(runtime, handle, port)
        assert answer["Status"] == "READY" and answer["EngineID"] == "portable-default"
        proc = psutil.Process(int(handle.ref.split(":")[0]))
        assert proc.cmdline()[:3] == [sys.executable, "-m", "engine"]
        assert Path(proc.cwd()).resolve() == (tmp_path / "package").resolve()
        runtime.stop(handle, timeout_s=5)

        settings.ENGINE_PYTHON = str(wrapper)
        port = free_port()
        handle = runtime.start(spec_for(tmp_path / "package", cmd, port, "portable-setting"))
        assert wait_health(runtime, handle, port)["EngineID"] == "portable-setting"
        assert marker.read_text().split() == ["-m", "engine"]
        runtime.stop(handle, timeout_s=5)

        # a setting that points nowhere is refused at start, by name
        settings.ENGINE_PYTHON = str(tmp_path / "no-such-python")
        with pytest.raises(RuntimeError_, match="no-such-python"):
            runtime.start(spec_for(tmp_path / "package", cmd, free_port(), "portable-missing"))
    finally:
        for item in runtime.list_managed():
            runtime.stop(item.handle, timeout_s=2)


def test_python_option_still_writes_an_explicit_interpreter(tmp_path: Path) -> None:
    document = unpack(
        build_artifact(tmp_path / "out", "--python", sys.executable), tmp_path / "package"
    )
    assert document["AlgoRuntime"]["Cmd"] == f"{sys.executable} -m engine"
