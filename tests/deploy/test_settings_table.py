"""One settings table (README and docs/deployment.md), generated from
.env.example by scripts/settings-table.py: every FACILITY_* variable the code
reads is in .env.example with a meaning, and both tables are current."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from types import ModuleType

from .conftest import REPO

SCRIPT = REPO / "scripts" / "settings-table.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("settings_table", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def settings_py_names() -> set[str]:
    text = (REPO / "facility" / "settings.py").read_text()
    return set(re.findall(r"env_[a-z]+\(\s*\"(FACILITY_[A-Z0-9_]+)\"", text))


def test_every_setting_read_in_settings_py_is_in_env_example_and_both_tables() -> None:
    names = settings_py_names()
    assert len(names) > 40
    example = (REPO / ".env.example").read_text()
    readme = (REPO / "README.md").read_text()
    deployment = (REPO / "docs" / "deployment.md").read_text()
    for name in sorted(names):
        assert re.search(rf"^(# )?{name}=", example, flags=re.M), f"{name} not in .env.example"
        assert f"| `{name}` |" in readme, f"{name} not in the README's table"
        assert f"| `{name}` |" in deployment, f"{name} not in docs/deployment.md's table"


def test_the_script_finds_every_setting_the_code_reads() -> None:
    script = load_script()
    in_code = script.settings_read_in_code()
    assert settings_py_names() <= set(in_code)
    assert {"FACILITY_BIND", "FACILITY_WEB_WORKERS", "DATABASE_URL"} <= set(in_code)
    check = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert check.returncode == 0, check.stdout


def test_the_tables_are_the_generated_one() -> None:
    table = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert table.startswith("| variable | default | meaning |")
    for doc in ("README.md", "docs/deployment.md"):
        assert table in (REPO / doc).read_text(), (
            f"{doc}: regenerate the table with scripts/settings-table.py --write"
        )
