"""Service create -> RUNNING (issue 4): medians of 5, with the reference
algorithm's real packages, beside the bare engine start measured in the same
run. Targets: under 3 s with `local`, under 10 s with `docker` (image loaded).

    .venv/bin/python bench/bench_service_start.py [--repeat 5] [--no-docker]

Builds the artifact form (and the image form, cached in .cache/packages like
the tests do) with `manage.py build_reference_package`, serves them on a local
file server, pushes them with POST /CAP/AlgoFilePackages into a throw-away
database and package store, then times POST /CAP/AlgoServices (XpuType CPU,
1 replica) until GET /CAP/AlgoServices/<id> says RUNNING (the POST itself
starts the replica and waits for the engine's health check, queue mode
"sync"), deleting each service before the next.

Baselines: the bare engine process started by hand (`python -m engine` in the
unpacked package) until /Health answers; for docker, `docker run -d --network
host --init <image> python3 -m engine` until /Health answers. The docker case
is warmed by one service create first, so the image is loaded (the issue's
"image already loaded").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facility.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "bench_service_start.md"
_lines: list[str] = []


def report(line: str = "") -> None:
    print(line, flush=True)
    _lines.append(line)


def health_answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/Health", timeout=1) as response:
            return bool(json.loads(response.read())["Data"]["Status"] == "READY")
    except Exception:
        return False


def wait_health(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not health_answers(port):
        if time.monotonic() > deadline:
            raise SystemExit(f"no /Health on port {port} within {timeout:g} s")
        time.sleep(0.01)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build(form: str, out: Path, package_id: str) -> tuple[Path, str]:
    from algorithms.management.commands.build_reference_package import build as build_package

    return build_package(form, out, package_id)


def image_package() -> tuple[Path, str]:
    """The image form, cached in .cache/packages (as the tests cache it)."""
    from algorithms.management.commands.build_reference_package import (
        BASE_IMAGE,
        engine_digest,
    )

    subprocess.run(
        [str(ROOT / "scripts/build-base-image.sh"), "engine"],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    base_id = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    cache = Path(os.environ.get("FACILITY_CACHE_DIR", ".cache"))
    folder = (cache if cache.is_absolute() else ROOT / cache) / "packages"
    name = f"reference-image-{engine_digest()[:12]}-{base_id.split(':')[-1][:12]}"
    path = folder / f"{name}.tar.gz"
    if path.is_file() and path.with_suffix(".md5").is_file():
        return path, path.with_suffix(".md5").read_text().strip()
    for stale in folder.glob("reference-image-*"):
        stale.unlink()
    package = build("image", folder, name)
    path.with_suffix(".md5").write_text(package[1])
    return package


class Facility:
    def __init__(self, token: str, server: Any) -> None:
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
        self.server = server

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else b""
        response = self.client.generic(
            method, path, data, content_type="application/json", **self.headers
        )
        payload = json.loads(response.content) if response.content else {}
        if response.status_code != 200:
            raise SystemExit(f"{method} {path}: {response.status_code} {payload}")
        return payload.get("Data")

    def push(self, package: tuple[Path, str], package_id: str) -> None:
        path, md5 = package
        link = self.server.root / path.name
        if not link.exists():
            link.symlink_to(path)
        url = self.server.url(path.name)
        self.call(
            "POST",
            "/CAP/AlgoFilePackages",
            {"AlgoFilePackageID": package_id, "Url": url, "MD5": md5},
        )
        status = self.call("GET", f"/CAP/AlgoFilePackages/{package_id}")["Status"]
        if status != 2:
            raise SystemExit(f"package {package_id} has Status {status}")

    def create_until_running(self, package_id: str) -> tuple[float, str]:
        t0 = time.perf_counter()
        body = {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": package_id}
        service_id = self.call("POST", "/CAP/AlgoServices", body)["AlgoServiceID"]
        while (detail := self.call("GET", f"/CAP/AlgoServices/{service_id}"))[
            "Status"
        ] != "RUNNING":
            if time.perf_counter() - t0 > 120:
                raise SystemExit(f"service {service_id} not RUNNING: {detail}")
            time.sleep(0.01)
        return time.perf_counter() - t0, service_id

    def delete(self, service_id: str) -> None:
        self.call("DELETE", f"/CAP/AlgoServices/{service_id}")


def bare_local(package_dir: Path) -> float:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_", "EVENT_"))}
    env.update(ENGINE_PORT=str(port), ENGINE_HOST="127.0.0.1", PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine"],
        cwd=package_dir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_health(port)
        return time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bare_docker(image: str) -> float:
    port = free_port()
    name = f"bench-bare-{os.getpid()}-{port}"
    t0 = time.perf_counter()
    subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--rm",
            "--name",
            name,
            "--network",
            "host",
            "--init",
            "-e",
            f"ENGINE_PORT={port}",
            "-e",
            "ENGINE_HOST=127.0.0.1",
            image,
            "python3",
            "-m",
            "engine",
        ],
        check=True,
        capture_output=True,
    )
    try:
        wait_health(port)
        return time.perf_counter() - t0
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)


def summary(label: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    report(
        f"{label}: median {median:.2f} s (min {min(samples):.2f}, max {max(samples):.2f}; "
        + ", ".join(f"{s:.2f}" for s in samples)
        + ")"
    )
    return median


def run(args: argparse.Namespace, work: Path) -> None:
    from django.contrib.auth import get_user_model

    from compute.actions import ensure_local_node
    from facility.models import PlatformClient
    from services.models import AlgoService
    from tests.support.http_server import FileServer

    ensure_local_node()
    token = PlatformClient.new_token()
    user = get_user_model().objects.create(username="platform:bench")
    client = PlatformClient(name="bench", user=user)
    client.set_token(token)
    client.save()
    served = work / "served"
    served.mkdir()
    server = FileServer(served)
    server.start()
    facility = Facility(token, server)
    try:
        artifact = build("artifact", work / "packages", "reference-artifact")
        facility.push(artifact, "reference-artifact")
        from algorithms.models import AlgoFilePackage

        package_dir = Path(AlgoFilePackage.objects.get(pk="reference-artifact").content_dir)
        report(f"{os.cpu_count()} CPU cores; repeat {args.repeat}; medians")
        bare_local(package_dir)  # warm the page cache
        base = summary(
            "local baseline: bare engine process -> /Health",
            [bare_local(package_dir) for _ in range(args.repeat)],
        )
        samples = []
        for _ in range(args.repeat):
            elapsed, service_id = facility.create_until_running("reference-artifact")
            samples.append(elapsed)
            facility.delete(service_id)
        local = summary("local: POST /CAP/AlgoServices -> RUNNING", samples)
        report(
            f"local: {local / base:.2f}x the bare start; "
            f"target < 3 s: {'met' if local < 3 else 'MISSED'}"
        )

        if args.no_docker:
            return
        t0 = time.perf_counter()
        image = image_package()
        report(
            f"image package ready in {time.perf_counter() - t0:.0f} s "
            f"({image[0].stat().st_size / 1e6:.0f} MB)"
        )
        t0 = time.perf_counter()
        facility.push(image, "reference-image")
        report(f"image package pushed (download, MD5, unpack) in {time.perf_counter() - t0:.1f} s")
        first, service_id = facility.create_until_running("reference-image")
        tag = AlgoService.objects.get(pk=service_id).image
        facility.delete(service_id)
        report(
            f"docker: first service {first:.2f} s (docker load of the package's image, "
            "skipped when the engine already has it)"
        )
        bare_docker(tag)
        base = summary(
            f"docker baseline: docker run {tag} -> /Health",
            [bare_docker(tag) for _ in range(args.repeat)],
        )
        samples = []
        for _ in range(args.repeat):
            elapsed, service_id = facility.create_until_running("reference-image")
            samples.append(elapsed)
            facility.delete(service_id)
        dock = summary("docker (image loaded): POST /CAP/AlgoServices -> RUNNING", samples)
        report(
            f"docker: {dock / base:.2f}x the bare start; "
            f"target < 10 s: {'met' if dock < 10 else 'MISSED'}"
        )
    finally:
        server.stop()
        from tests.support.engines import stop_all_replicas

        stop_all_replicas()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-docker", action="store_true")
    args = parser.parse_args()

    setup_test_environment()
    settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"bench_services_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="bench-services-") as tmp:
        work = Path(tmp)
        settings.PACKAGE_STORE = work / "store"
        settings.DATA_DIR = work / "data"
        settings.FACILITY_QUEUE_MODE = "sync"
        settings.PUBLIC_URL = "http://127.0.0.1:9"  # no event intake runs
        settings.ENGINE_PORT_RANGE = "24750-24999"
        old_name = connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False
        )
        try:
            run(args, work)
        finally:
            connection.creation.destroy_test_db(old_name, verbosity=0)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        "# bench_service_start\n\n```\n$ "
        + " ".join(["bench/bench_service_start.py", *sys.argv[1:]])
        + "\n"
        + "\n".join(_lines)
        + "\n```\n"
    )


if __name__ == "__main__":
    main()
