from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compute.actions import ensure_local_node
from tests.support.engines import Engines, stop_all_replicas


@pytest.fixture
def engines(api: Any, file_server: Any) -> Engines:
    ensure_local_node()
    return Engines(api, file_server)


@pytest.fixture(autouse=True)
def _stop_replicas_after_test() -> Iterator[None]:
    yield
    stop_all_replicas()
