"""A whole facility (`manage.py runfacility`: web server, workers, loops) in
its own processes and database, driven over HTTP like the platform drives
it, with the means to kill its parts. Shared by the fault tests and
bench/bench_recovery.py."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import yaml

from tests.support import packages as pkg

ROOT = Path(__file__).resolve().parents[2]
STUB = ROOT / "tests" / "support" / "stub_engine.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_range() -> tuple[int, int]:
    first = free_port()
    return first, first + 50


def wait_for(check: Callable[[], Any], timeout_s: float, what: str, every_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, urllib.error.URLError, ValueError, KeyError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last: {last!r}")


def stub_package() -> bytes:
    document = {
        "Name": "stub-engine",
        "Version": "1.0",
        "Author": "tests",
        "Bin": {"Type": "artifact", "LocalUri": "engine.py"},
        "AlgoRuntime": {
            "Cmd": f"{sys.executable} engine.py",
            "Xpu": [{"Quota": 0, "Capacities": {"Stream_Video_Quota": 4}}],
        },
    }
    archive = pkg.tar_of(
        {"algo.yaml": yaml.safe_dump(document).encode(), "engine.py": STUB.read_bytes()}, gz=True
    )
    return archive.data


class Facility:
    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            "DJANGO_SETTINGS_MODULE": "facility.settings",
            "FACILITY_DATA_DIR": str(data_dir),
            "FACILITY_PUBLIC_URL": self.base,
            "FACILITY_RECONCILE_INTERVAL_S": "1",
            "FACILITY_DELIVERY_INTERVAL_S": "0.2",
            "FACILITY_RESULT_BACKOFF_BASE_S": "0.2",
            "FACILITY_RESULT_BACKOFF_MAX_S": "1",
            "FACILITY_QUEUE_POLL_S": "0.2",
            "FACILITY_SAMPLE_INTERVAL_S": "30",
            "FACILITY_ENGINE_PORTS": "{}-{}".format(*_port_range()),
        }
        if database_url:
            self.env["DATABASE_URL"] = database_url
        else:
            self.env.pop("DATABASE_URL", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.token = ""
        self.log = data_dir / "facility.log"

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return result.stdout

    def prepare(self) -> None:
        self.manage("migrate", "-v0")
        self.token = self.manage("create_platform_client", "faults", "--quiet").strip()

    def start(self) -> float:
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    str(ROOT / "manage.py"),
                    "runfacility",
                    "--no-migrate",
                    "--bind",
                    f"127.0.0.1:{self.port}",
                    "--web-workers",
                    "1",
                ],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: self.call("POST", "/CAP/AlgoFilePackages:search", {}), 90, "the API")
        return time.monotonic() - started

    def children(self, needle: str) -> list[psutil.Process]:
        assert self.process is not None
        found = []
        for child in psutil.Process(self.process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                if needle in " ".join(child.cmdline()):
                    found.append(child)
        return found

    def kill_child(self, needle: str) -> None:
        """SIGKILL a part of the facility (and what it forked)."""
        leaders = [p for p in self.children(needle) if p.ppid() == self.process.pid]  # type: ignore[union-attr]
        assert leaders, f"no {needle} process"
        for leader in leaders:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(leader.pid, signal.SIGKILL)

    def kill_all(self) -> None:
        """SIGKILL the whole facility at once: supervisor, web, workers, loops."""
        assert self.process is not None
        groups = {self.process.pid} | {
            p.pid for p in psutil.Process(self.process.pid).children() if p.is_running()
        }
        for group in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill_all()

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as error:
            return json.loads(error.read())


def scratch_database() -> tuple[str, Callable[[], None]]:
    """A database of its own on the PostgreSQL of DATABASE_URL, or SQLite."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return "", lambda: None
    import psycopg

    name = f"facility_faults_{secrets.token_hex(4)}"
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return url.rsplit("/", 1)[0] + "/" + name, drop
