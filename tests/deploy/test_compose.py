"""deploy/compose.yaml end to end with docker-compose (Debian's 1.29.2, put
in place by scripts/ensure-compose.sh): the facility image and the
PostgreSQL and Redis images built here from Debian packages
(deploy/build-image.sh, deploy/build-service-images.sh; cached), brought up
as a project of its own on free loopback ports, ready, answering an
authenticated call with a credential made by `docker-compose exec`, and
keeping its records in that PostgreSQL and its rate limit counts in that
Redis; then `down -v`. Without a Docker engine the test is skipped with the
reason; with CI=true that is a failure."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.docker import require_docker, unavailable

from .conftest import REPO
from .test_image import free_port, http, wait_status

pytestmark = pytest.mark.docker

COMPOSE_FILE = REPO / "deploy" / "compose.yaml"


def ensure_compose() -> None:
    """docker-compose runs, or skip/fail (CI) with the reason."""
    ready = subprocess.run(
        [str(REPO / "scripts/ensure-compose.sh")], capture_output=True, text=True, timeout=600
    )
    if ready.returncode != 0 or shutil.which("docker-compose") is None:
        lines = ready.stderr.strip().splitlines() or [f"exit status {ready.returncode}"]
        unavailable(f"scripts/ensure-compose.sh: {lines[-1]}")


def build(script: str) -> list[str]:
    started = time.monotonic()
    built = subprocess.run(
        [str(REPO / script)], capture_output=True, text=True, timeout=1200, cwd=REPO
    )
    log = "\n".join(
        line for line in built.stderr.splitlines() if "is ignored: it is neither" not in line
    )
    assert built.returncode == 0, log[-3000:]
    print(f"\n{script}: {time.monotonic() - started:.1f} s\n{log}")
    return built.stdout.split()


@dataclass
class Project:
    name: str
    env_file: Path
    data_dir: Path
    facility_port: int
    postgres_port: int
    redis_port: int

    def compose(
        self, *args: str, timeout: float = 300, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [
                "docker-compose",
                "--project-name",
                self.name,
                "--env-file",
                str(self.env_file),
                "--file",
                str(COMPOSE_FILE),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            # the host's own settings must not leak into the file's ${…}
            env={
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("FACILITY_", "POSTGRES_", "REDIS_", "COMPOSE_"))
            },
        )
        if check:
            assert result.returncode == 0, (
                f"docker-compose {' '.join(args)}:\n{result.stderr[-3000:]}"
            )
        return result

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "40", check=False).stdout[-6000:]


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    require_docker()
    ensure_compose()
    facility = build("deploy/build-image.sh")[-1]
    postgres, redis = build("deploy/build-service-images.sh")[-2:]
    return {"facility": facility, "postgres": postgres, "redis": redis}


@pytest.fixture
def project(images: dict[str, str], tmp_path: Path) -> Iterator[Project]:
    # replicas mount from the host: the data folder has the same path inside
    # and outside, and belongs to the image's user
    data = tmp_path / "facility-data"
    data.mkdir()
    os.chown(data, 10001, 10001)
    ports = {"facility": free_port(), "postgres": free_port(), "redis": free_port()}
    settings = {
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "REDIS_PASSWORD": secrets.token_hex(12),
        "FACILITY_SECRET_KEY": secrets.token_hex(32),
        "FACILITY_IMAGE": images["facility"],
        "POSTGRES_IMAGE": images["postgres"],
        "REDIS_IMAGE": images["redis"],
        "POSTGRES_PORT": str(ports["postgres"]),
        "REDIS_PORT": str(ports["redis"]),
        "FACILITY_DATA_DIR": str(data),
        "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
        # loopback only: nothing of the project is reachable from elsewhere
        "FACILITY_BIND": f"127.0.0.1:{ports['facility']}",
        "FACILITY_PUBLIC_URL": f"http://127.0.0.1:{ports['facility']}",
        "FACILITY_LOG_FORMAT": "plain",
    }
    lines = (REPO / "deploy" / "compose.env.example").read_text().splitlines()
    kept = [line for line in lines if line.split("=", 1)[0] not in settings]
    env_file = tmp_path / "compose.env"
    env_file.write_text("\n".join(kept + [f"{k}={v}" for k, v in settings.items()]) + "\n")
    running = Project(
        f"facility-compose-test-{secrets.token_hex(4)}",
        env_file,
        data,
        ports["facility"],
        ports["postgres"],
        ports["redis"],
    )
    try:
        yield running
    finally:
        down = running.compose("down", "-v", "--remove-orphans", "--timeout", "30", check=False)
        print(f"docker-compose down: {down.returncode}\n{down.stderr[-2000:]}")
        left = subprocess.run(
            [
                "docker",
                "ps",
                "-a",
                "-q",
                "--filter",
                f"label=com.docker.compose.project={running.name}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.split()
        assert not left, f"containers left after down: {left}"


def test_compose_runs_the_facility_on_postgresql_and_redis(project: Project) -> None:
    started = time.monotonic()
    project.compose("up", "-d", timeout=600)

    # every service listens on 127.0.0.1 only (host networking, no published ports)
    published = subprocess.run(
        [
            "docker",
            "ps",
            "--filter",
            f"label=com.docker.compose.project={project.name}",
            "--format",
            "{{.Ports}}",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.split()
    assert published == [], published

    status, body = wait_status(project.facility_port, "/readyz", 200, timeout=300)
    assert status == 200, f"{body}\n{project.logs()}"
    print(f"ready {time.monotonic() - started:.1f} s after `up -d`")
    checks = body["checks"]
    assert checks["database"] == {"ok": True, "detail": "postgresql"}
    assert checks["redis"] == {
        "ok": True,
        "detail": f"redis://127.0.0.1:{project.redis_port}/0",  # no password shown
    }

    token = project.compose(
        "exec",
        "-T",
        "facility",
        "python",
        "manage.py",
        "create_platform_client",
        "compose-test",
        "--quiet",
    ).stdout.strip()
    assert token
    search = {"PageNumber": 1, "PageSize": 10}
    status, body = http(project.facility_port, "/CAP/AlgoFilePackages:search", search, token=token)
    assert status == 200, body
    assert body["Code"] == 0 and body["Data"]["TotalSize"] == 0
    status, body = http(project.facility_port, "/CAP/AlgoFilePackages:search", search)
    assert status in (401, 403) and body["Code"] != 0

    # the credential is a row in the project's PostgreSQL (its local socket
    # trusts local users), and the facility made no SQLite file
    rows = project.compose(
        "exec",
        "-T",
        "postgres",
        "psql",
        "-p",
        str(project.postgres_port),
        "-U",
        "facility",
        "-d",
        "facility",
        "-tAc",
        "SELECT name FROM facility_platformclient",
    )
    assert rows.stdout.split() == ["compose-test"], rows.stderr
    assert not list(project.data_dir.rglob("*.sqlite3"))

    # the call was counted in the project's Redis (the shared rate limit)
    keys = project.compose(
        "exec",
        "-T",
        "redis",
        "redis-cli",
        "-h",
        "127.0.0.1",
        "-p",
        str(project.redis_port),
        "--scan",
        "--pattern",
        "facility:*throttle:platform-client:*",
    ).stdout.split()
    assert keys, project.logs()
    print(f"compose end to end: {time.monotonic() - started:.1f} s")
