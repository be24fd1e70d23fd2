from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from compute.actions import ensure_local_node
from tests.support.engines import Engines, stop_all_replicas
from tests.support.examples import example
from tests.support.viid_server import ViewLibraryServer


@pytest.fixture
def engines(api: Any, file_server: Any) -> Engines:
    ensure_local_node()
    return Engines(api, file_server)


@pytest.fixture(autouse=True)
def _deliveries_by_the_loop_only(settings: Any) -> None:
    """Deliveries go out when a test drives tasks.jobs, not from the intake's
    background sender (tested on its own in test_events.py)."""
    settings.RESULT_SEND_ON_INTAKE = False


@pytest.fixture(autouse=True)
def _stop_replicas_after_test() -> Iterator[None]:
    yield
    stop_all_replicas()


@pytest.fixture
def viid() -> Iterator[ViewLibraryServer]:
    server = ViewLibraryServer()
    try:
        yield server
    finally:
        server.close()


class Tasks:
    def __init__(self, api: Any, engines: Engines) -> None:
        self.api = api
        self.engines = engines

    def body(self, receive_url: str = "http://127.0.0.1:9/none", **overrides: Any) -> dict:
        body = example("D.1-K.1-d")
        body["TaskInfo"]["Labels"] = {"AlgoCaBinName": "stub-engine", "Version": "1.0"}
        body["TaskInfo"]["RulesParams"][0]["ResultReceiveUrl"] = [receive_url]
        body["TaskInfo"]["StreamOptions"]["VideoStreamOptions"]["Url"] = "rtsp://127.0.0.1:8554/cam"
        body.update(overrides)
        return body

    def create(self, expect: int = 200, prefix: str = "/CAP", **kwargs: Any) -> dict:
        response = self.api.post(f"{prefix}/AlgoTasks", self.body(**kwargs))
        assert response.status_code == expect, response.body
        return response.body

    def detail(self, task_id: str, prefix: str = "/CAP") -> dict:
        response = self.api.get(f"{prefix}/AlgoTasks/{task_id}")
        assert response.status_code == 200, response.body
        return response.body["Data"]


@pytest.fixture
def tasks(api: Any, engines: Engines) -> Tasks:
    return Tasks(api, engines)
