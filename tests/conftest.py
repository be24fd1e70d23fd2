from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from facility.models import PlatformClient
from tests.support.http_server import FileServer
from tests.support.receiver import Receiver


@pytest.fixture(autouse=True)
def _facility_settings(settings: Any, tmp_path: Any) -> None:
    settings.PACKAGE_STORE = tmp_path / "store"
    settings.DATA_DIR = tmp_path / "data"
    settings.FACILITY_QUEUE_MODE = "sync"
    settings.DOWNLOAD_BACKOFF_S = 0.01
    settings.DOWNLOAD_ATTEMPTS = 3
    settings.DOWNLOAD_READ_TIMEOUT_S = 5
    settings.DOWNLOAD_CONNECT_TIMEOUT_S = 2


@pytest.fixture(autouse=True)
def _db_for_all(db: Any) -> None:
    """Every test may touch the database."""


@pytest.fixture(autouse=True)
def _default_language_after_each_test() -> Iterator[None]:
    """LocaleMiddleware activates a request's language for the thread and
    leaves it active: after one zh-hans request, later tests in the process
    would see Chinese messages."""
    yield
    from django.utils import translation

    translation.deactivate()


@pytest.fixture
def platform_token() -> str:
    token = PlatformClient.new_token()
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create(username="platform:test")
    client = PlatformClient(name="test", user=user)
    client.set_token(token)
    client.save()
    return token


class ContractClient:
    """Talks to the facility as the platform does: JSON bodies, the bearer
    credential, and background work run when each request commits."""

    def __init__(self, token: str | None, capture: Any) -> None:
        self.client = APIClient()
        self.capture = capture
        self.token = token

    def _headers(self, headers: dict[str, str]) -> dict[str, str]:
        result = {}
        if self.token:
            result["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        for key, value in headers.items():
            result["HTTP_" + key.upper().replace("-", "_")] = value
        return result

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        **headers: str,
    ) -> Any:
        import json

        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
        with self.capture(execute=True):
            response = self.client.generic(
                method.upper(), path, data, content_type=content_type, **self._headers(headers)
            )
        response.body = json.loads(response.content) if response.content else None
        return response

    def get(self, path: str, **headers: str) -> Any:
        return self.call("get", path, **headers)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("post", path, body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("put", path, body, **kwargs)

    def delete(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        return self.call("delete", path, body, **kwargs)


@pytest.fixture
def api(platform_token: str, django_capture_on_commit_callbacks: Any) -> ContractClient:
    return ContractClient(platform_token, django_capture_on_commit_callbacks)


@pytest.fixture
def anonymous_api(django_capture_on_commit_callbacks: Any) -> ContractClient:
    return ContractClient(None, django_capture_on_commit_callbacks)


@pytest.fixture
def file_server(tmp_path: Any) -> Iterator[FileServer]:
    root = tmp_path / "served"
    root.mkdir()
    server = FileServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """An HTTP receiver of events on loopback (tests/support/receiver.py)."""
    server = Receiver()
    try:
        yield server
    finally:
        server.close()
