"""Typed readers for settings that come from environment variables.

Each helper fails loudly on a malformed value, naming the variable, so a typo in
a deployment shows up at start-up rather than as odd behaviour later.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: expected true/false, 1/0, yes/no or on/off")


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected an integer") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be at least {minimum}")
    return value


def env_float(name: str, default: float, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a number") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r}: must be at least {minimum}")
    return value


def parse_size(text: str) -> int:
    """'512M', '20GiB', '1048576' -> bytes (binary multiples)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(text)
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").lower()[:1]])


def env_size(name: str, default: str) -> int:
    raw = os.environ.get(name, default)
    try:
        return parse_size(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a size such as 512M or 20G") from None


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def env_json(name: str, default: Any, kind: type) -> Any:
    """A structured setting (a JSON object or list) given as one variable."""
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except ValueError as error:
        raise ImproperlyConfigured(f"{name}: not JSON ({error})") from None
    if not isinstance(value, kind):
        raise ImproperlyConfigured(f"{name}: expected a JSON {kind.__name__}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r}: expected one of {', '.join(choices)}")
    return value


def env_path(name: str, default: Path) -> Path:
    raw = os.environ.get(name)
    return Path(raw).expanduser().resolve() if raw else default
