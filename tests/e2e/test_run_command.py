"""The README's run command, for real: `manage.py runfacility` on the
embedded default (SQLite, django-q2 ORM broker) serves the API and its
workers fetch a pushed package from a real HTTP server on loopback."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = b"""Name: e2e-demo
Version: 1.0.0
Author: facility
Bin:
  Type: artifact
  LocalUri: bin/run.sh
AlgoRuntime:
  Cmd: bin/run.sh
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _package() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in (("algo.yaml", MANIFEST), ("bin/run.sh", b"#!/bin/sh\necho ok\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _call(base: str, method: str, path: str, token: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path,
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return json.loads(error.read())


@pytest.mark.e2e
def test_run_command_serves_the_api_and_workers_fetch_a_package(tmp_path, file_server):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env.update(
        FACILITY_DATA_DIR=str(tmp_path / "data"),
        FACILITY_QUEUE_POLL_S="0.2",
        DJANGO_SETTINGS_MODULE="facility.settings",
    )
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    token = subprocess.run(
        [*manage, "create_platform_client", "e2e", "--quiet"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*manage, "runfacility", "--bind", f"127.0.0.1:{port}", "--web-workers", "1"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = _call(base, "POST", "/CAP/AlgoFilePackages:search", token, {})
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "API server did not start"
                assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
                time.sleep(0.3)
        assert answer["Code"] == 0
        # the admin's and Swagger UI's assets are served by the facility itself
        for asset in (
            "/static/admin/css/base.css",
            "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js",
        ):
            with urllib.request.urlopen(base + asset, timeout=10) as response:
                assert response.status == 200, asset

        data = _package()
        url = file_server.add("demo.tar.gz", data)
        pushed = _call(
            base,
            "POST",
            "/CAP/AlgoFilePackages",
            token,
            {"AlgoFilePackageID": "e2e-1", "Url": url, "MD5": hashlib.md5(data).hexdigest()},
        )
        assert pushed["Code"] == 0, pushed
        while True:
            detail = _call(base, "GET", "/CAP/AlgoFilePackages/e2e-1", token)["Data"]
            if detail["Status"] in (2, 4):
                break
            assert time.monotonic() < deadline, f"worker did not finish: {detail}"
            time.sleep(0.3)
        assert detail["Status"] == 2, detail
        assert detail["Name"] == "e2e-demo"
        assert detail["Progress"] == 100
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0
