from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from services.runtime import get_runtime
from services.runtime.base import RuntimeError_
from services.runtime.local import LocalRuntime

REPO = Path(__file__).resolve().parents[3]


def test_local_by_name_and_default(settings: Any, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path
    runtime = get_runtime("local")
    assert isinstance(runtime, LocalRuntime)
    assert runtime.state_dir == tmp_path / "runtime" / "local"
    for value in ("local", "auto", ""):
        settings.FACILITY_RUNTIME = value
        assert get_runtime().name == "local"
    settings.FACILITY_RUNTIME = "docker"
    assert get_runtime().name == "docker"


def test_unknown_runtime_is_refused() -> None:
    with pytest.raises(RuntimeError_, match="unknown runtime 'kvm'"):
        get_runtime("kvm")


def test_local_does_not_import_the_docker_sdk(tmp_path: Path) -> None:
    code = (
        "import sys, django, os\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'facility.settings')\n"
        "django.setup()\n"
        "from services.runtime import get_runtime\n"
        "get_runtime('local').is_available()\n"
        "print('docker' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "FACILITY_DATA_DIR": str(tmp_path)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
