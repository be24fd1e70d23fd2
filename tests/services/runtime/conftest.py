from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

STUB = Path(__file__).with_name("engine_stub.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_json(port: int, path: str = "/Health", timeout: float = 1.0) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return json.loads(r.read())


def wait_answer(port: int, timeout: float = 15.0) -> Any:
    """The engine's /Health answer, polled until it comes or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return get_json(port)
        except (OSError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def wait_for(predicate: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def port_closed(port: int) -> bool:
    try:
        get_json(port, timeout=0.5)
    except (OSError, urllib.error.URLError):
        return True
    return False


@pytest.fixture
def port() -> int:
    return free_port()
