"""What every Docker-backed test needs: a running engine (started by
scripts/ensure-docker.sh), a base image built without a registry
(scripts/build-base-image.sh), and the rule that a missing engine skips the
test with its reason outside CI but fails it with CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    if in_ci():
        pytest.fail(f"CI=true and no Docker engine: {reason}", pytrace=False)
    pytest.skip(f"no Docker engine: {reason}")


def docker_cli(
    *args: str, check: bool = True, timeout: float = 300, **kw: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *args], capture_output=True, text=True, timeout=timeout, check=check, **kw
    )


def ensure_docker() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "scripts/ensure-docker.sh")], capture_output=True, text=True, timeout=300
    )


def require_docker() -> None:
    """A Docker engine that answers, or skip/fail with the reason."""
    if shutil.which("docker") is None:
        unavailable("no docker command")
    try:
        ready = ensure_docker()
    except (OSError, subprocess.TimeoutExpired) as error:
        unavailable(f"scripts/ensure-docker.sh: {error}")
    if ready.returncode != 0:
        print(ready.stderr)  # the dockerd log tail, shown with the failure
        lines = ready.stderr.strip().splitlines() or [f"exit status {ready.returncode}"]
        unavailable(f"scripts/ensure-docker.sh: {lines[-1]}")
    from services.runtime.docker import DockerRuntime

    ok, why = DockerRuntime().is_available()
    if not ok:
        unavailable(why)


def built_image(target: str = "base", timeout: float = 900) -> str:
    """The tag of scripts/build-base-image.sh TARGET (built, or loaded from its cache)."""
    built = subprocess.run(
        [str(REPO / "scripts/build-base-image.sh"), target],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    return built.stdout.strip().splitlines()[-1]
