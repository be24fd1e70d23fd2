"""Helpers of the deployment tests: a second, empty facility (its own
database and data folder) driven through manage.py in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@dataclass
class ScratchFacility:
    """An empty facility: a database nobody else uses and a data folder."""

    database_url: str
    data_dir: Path

    def env(self, **extra: str) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("FACILITY_") and key != "DATABASE_URL"
        }
        env.update(
            DATABASE_URL=self.database_url,
            FACILITY_DATA_DIR=str(self.data_dir),
            FACILITY_QUEUE_MODE="sync",
            FACILITY_NVML_ENABLED="false",
            DJANGO_SETTINGS_MODULE="facility.settings",
        )
        env.update(extra)
        return env

    def manage(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, str(REPO / "manage.py"), *args],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"manage.py {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result.stdout + result.stderr

    def python(self, code: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return result.stdout


def _postgres_admin_params() -> dict[str, object] | None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return None
    return {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "dbname": "postgres",
    }


@pytest.fixture
def scratch_facility(tmp_path: Path) -> Iterator[ScratchFacility]:
    """On PostgreSQL a temporary database `facility_scratch_<random>` on the
    same server (dropped afterwards); on SQLite a file of its own."""
    data_dir = tmp_path / "scratch-data"
    params = _postgres_admin_params()
    if params is None:
        yield ScratchFacility(f"sqlite:///{tmp_path / 'scratch.sqlite3'}", data_dir)
        return
    import psycopg

    name = f"facility_scratch_{uuid.uuid4().hex[:10]}"
    kwargs = {k: v for k, v in params.items() if v is not None}
    with psycopg.connect(**kwargs, autocommit=True) as conn:  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')
    user = str(params.get("user") or "")
    password = f":{params['password']}" if params.get("password") else ""
    auth = f"{user}{password}@" if user else ""
    host = params.get("host") or "127.0.0.1"
    port = f":{params['port']}" if params.get("port") else ""
    try:
        yield ScratchFacility(f"postgres://{auth}{host}{port}/{name}", data_dir)
    finally:
        with psycopg.connect(**kwargs, autocommit=True) as conn:  # type: ignore[arg-type]
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
