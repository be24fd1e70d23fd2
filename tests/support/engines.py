"""Runnable test packages (a stub engine; the reference engine as it is in
this checkout) and helpers to drive services."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

import algorithms.reference.engine as reference_engine
from services.models import Replica
from services.runtime.base import ReplicaHandle
from services.runtime.registry import get_runtime
from tests.support import packages as pkg

STUB = Path(__file__).resolve().parent / "stub_engine.py"


def engine_manifest(**runtime: Any) -> bytes:
    document = {
        "Name": "stub-engine",
        "Version": "1.0",
        "Author": "tests",
        "Bin": {"Type": "artifact", "LocalUri": "engine.py"},
        "AlgoRuntime": {
            "Cmd": f"{sys.executable} engine.py",
            "Env": [
                {"Name": "K1", "Value": "default-1"},
                {"Name": "K2", "Value": ""},
                {"Name": "LOG_LEVEL", "Value": "info"},
            ],
            "Xpu": [
                {
                    "Quota": 0.5,
                    "Vendor": "NVIDIA",
                    "Accelerator": "T4",
                    "Capacities": {"Stream_Video_Quota": 3},
                }
            ],
            **runtime,
        },
    }
    return yaml.safe_dump(document).encode()


class Engines:
    """Pushes runnable packages (a stub engine) and talks to services."""

    def __init__(self, api: Any, file_server: Any) -> None:
        self.api = api
        self.server = file_server

    def package(self, package_id: str = "stub-1", **runtime: Any) -> str:
        archive = pkg.tar_of(
            {"algo.yaml": engine_manifest(**runtime), "engine.py": STUB.read_bytes()}, gz=True
        )
        url = self.server.add(f"{package_id}.tar.gz", archive.data)
        response = self.api.post(
            "/CAP/AlgoFilePackages",
            {"AlgoFilePackageID": package_id, "Url": url, "MD5": archive.md5},
        )
        assert response.status_code == 200, response.body
        detail = self.api.get(f"/CAP/AlgoFilePackages/{package_id}").body["Data"]
        assert detail["Status"] == 2, detail
        return package_id

    def create(self, package_id: str = "stub-1", expect: int = 200, **body: Any) -> Any:
        payload = {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": package_id, **body}
        response = self.api.post("/CAP/AlgoServices", payload)
        assert response.status_code == expect, response.body
        return response.body

    def detail(self, service_id: str) -> dict[str, Any]:
        response = self.api.get(f"/CAP/AlgoServices/{service_id}")
        assert response.status_code == 200, response.body
        return response.body["Data"]


def stop_all_replicas() -> None:
    """Replicas are real processes: none may outlive its test."""
    runtime = get_runtime("local")
    for item in runtime.list_managed():
        runtime.stop(item.handle, timeout_s=3)
    for replica in Replica.objects.exclude(handle_ref=""):
        get_runtime(replica.runtime).stop(
            ReplicaHandle(runtime=replica.runtime, ref=replica.handle_ref), timeout_s=3
        )


# --- the reference engine (algorithms/reference/engine) as a package -----------------

REFERENCE_NAME, REFERENCE_VERSION = "reference-people", reference_engine.__version__
REFERENCE_DIR = Path(reference_engine.__file__).resolve().parent


def reference_package(env: dict[str, str], capacity: int) -> pkg.Built:
    """A minimal artifact package of the reference engine: algo.yaml (the
    engine settings `env`, `capacity` streams a replica) and a copy of
    algorithms/reference/engine, run with this venv's python."""
    manifest = {
        "Name": REFERENCE_NAME,
        "Version": REFERENCE_VERSION,
        "Author": "tests",
        "Bin": {"Type": "artifact", "LocalUri": "engine"},
        "AlgoRuntime": {
            "Cmd": f"{sys.executable} -m engine",
            "Env": [{"Name": name, "Value": value} for name, value in env.items()],
            "Xpu": [{"Quota": 1, "Capacities": {"Stream_Video_Quota": capacity}}],
        },
    }
    files = {"algo.yaml": yaml.safe_dump(manifest).encode()}
    for path in sorted(REFERENCE_DIR.glob("*.py")):
        files[f"engine/{path.name}"] = path.read_bytes()
    return pkg.tar_of(files, gz=True)


def analyse_to_the_end(engine_url: str, task_id: str, body: Any, timeout: float = 90) -> Any:
    """POST a task to a reference engine at `engine_url` and wait until it is
    FINISHED (a file source read to its end); the task's detail."""
    created = requests.post(f"{engine_url}/AlgoTasks", json=body, timeout=10)
    assert created.status_code == 200 and created.json()["Code"] == 0, created.text
    deadline = time.monotonic() + timeout
    while True:
        state = requests.get(f"{engine_url}/AlgoTasks/{task_id}", timeout=5).json()["Data"]
        if state["Status"] == "FINISHED":
            return state
        assert state["Status"] in ("PENDING", "RUNNING"), state
        assert time.monotonic() < deadline, state
        time.sleep(0.3)
