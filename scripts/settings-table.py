#!/usr/bin/env python3
"""Print the settings table (variable | default | meaning) as Markdown.

The names come from the code: every `FACILITY_*` environment variable (and
`DATABASE_URL`) read by facility/settings.py's env_* helpers or by
os.environ.get anywhere in the facility's packages. The defaults and
meanings come from `.env.example`, where each variable line (or a commented
`# NAME=value` line for settings best left unset) is preceded by comment
lines with its meaning; a comment line `default: …` overrides the value
shown as the default.

    scripts/settings-table.py            # the Markdown table
    scripts/settings-table.py --check    # exit 1 when a setting read in the code
                                         # is missing from .env.example or has no meaning
    scripts/settings-table.py --write    # replace the table in README.md and
                                         # docs/deployment.md
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ["facility", "algorithms", "compute", "services", "tasks", "ccp"]
NAME = re.compile(r"^(FACILITY_[A-Z0-9_]+|DATABASE_URL)$")
READERS = {
    "env_str",
    "env_bool",
    "env_choice",
    "env_json",
    "env_int",
    "env_float",
    "env_list",
    "env_path",
    "env_size",
    "get",
    "getenv",
}
VAR_LINE = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


@dataclass
class Setting:
    name: str
    value: str = ""
    meaning: str = ""
    default: str | None = None
    commented: bool = False
    read_in: list[str] = field(default_factory=list)


def _python_files() -> list[Path]:
    files: list[Path] = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if "migrations" not in path.parts and "tests" not in path.parts:
                files.append(path)
    return files


def settings_read_in_code() -> dict[str, list[str]]:
    """name → the files that read it."""
    found: dict[str, list[str]] = {}
    for path in _python_files():
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            first = node.args[0]
            if (
                name in READERS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and NAME.match(first.value)
            ):
                rel = path.relative_to(REPO).as_posix()
                files = found.setdefault(first.value, [])
                if rel not in files:
                    files.append(rel)
    return found


def settings_in_env_example(path: Path | None = None) -> dict[str, Setting]:
    path = path or REPO / ".env.example"
    entries: dict[str, Setting] = {}
    comments: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            comments = []
            continue
        match = VAR_LINE.match(line)
        if match:
            commented, name, value = bool(match.group(1)), match.group(2), match.group(3)
            default = None
            meaning = []
            for text in comments:
                if text.lower().startswith("default:"):
                    default = text.split(":", 1)[1].strip()
                else:
                    meaning.append(text)
            entries[name] = Setting(
                name=name,
                value=value.strip(),
                meaning=" ".join(meaning).strip(),
                default=default,
                commented=commented,
            )
            comments = []
        elif line.startswith("#"):
            comments.append(line.lstrip("#").strip())
    return entries


def table(entries: dict[str, Setting], names: list[str]) -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name in names:
        item = entries[name]
        meaning = item.meaning
        if item.default is not None:
            default = item.default
        elif item.commented:
            default = "unset"
            if item.value:
                meaning += f" (e.g. `{item.value}`)"
        elif item.value:
            default = f"`{item.value}`"
        else:
            default = "empty"
        meaning = meaning.replace("|", "\\|")
        rows.append(f"| `{name}` | {default} | {meaning} |")
    return "\n".join(rows) + "\n"


TABLE_DOCS = ["README.md", "docs/deployment.md"]
HEADER = "| variable | default | meaning |"


def write_table(path: Path, text: str) -> None:
    """Replace the settings table (from its header to the next blank line)."""
    doc = path.read_text(encoding="utf-8")
    start = doc.index(HEADER)
    end = doc.find("\n\n", start)
    end = len(doc) if end < 0 else end + 1
    path.write_text(doc[:start] + text + doc[end:], encoding="utf-8")


def main(argv: list[str]) -> int:
    in_code = settings_read_in_code()
    entries = settings_in_env_example()
    missing = sorted(set(in_code) - set(entries))
    no_meaning = sorted(name for name in in_code if name in entries and not entries[name].meaning)
    if "--check" in argv:
        for name in missing:
            print(f"{name}: read in {', '.join(in_code[name])} but not in .env.example")
        for name in no_meaning:
            print(f"{name}: no meaning (a comment line above it) in .env.example")
        return 1 if missing or no_meaning else 0
    # the order of .env.example (grouped by subject)
    names = [name for name in entries if name in in_code or NAME.match(name)]
    text = table(entries, names)
    if "--write" in argv:
        for doc in TABLE_DOCS:
            write_table(REPO / doc, text)
    else:
        sys.stdout.write(text)
    for name in missing:
        print(f"warning: {name} is read in the code but not documented", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
