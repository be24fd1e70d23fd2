from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from algorithms.models import AlgoFilePackage
from tests.support.http_server import FileServer
from tests.support.packages import Built

PACKAGE_ID = "1101150192508600000120231012203630000102"


def files_under(root: Path) -> set[str]:
    """Every file, link and special entry under `root` (directories left out)."""
    if not root.exists():
        return set()
    return {
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_symlink() or not path.is_dir()
    }


class Packages:
    """Serves archives on the test file server and pushes them as the platform would."""

    def __init__(self, api: Any, file_server: Any) -> None:
        self.api = api
        self.server = file_server

    def serve(self, name: str, archive: Built) -> str:
        return self.server.add(name, archive.data)

    def push(
        self,
        archive: Built,
        *,
        package_id: str = PACKAGE_ID,
        name: str = "package.tar",
        md5: str | None = None,
        expect: int = 200,
    ) -> Any:
        url = self.serve(name, archive)
        body = {
            "AlgoFilePackageID": package_id,
            "Url": url,
            "MD5": archive.md5 if md5 is None else md5,
        }
        response = self.api.post("/CAP/AlgoFilePackages", body)
        assert response.status_code == expect, response.body
        return response

    def push_exec(
        self,
        archive: Built,
        *,
        kind: str = "artifact",
        package_id: str = PACKAGE_ID,
        name: str = "exec.bin",
        md5: str | None = None,
    ) -> Any:
        url = self.serve(name, archive)
        body = {
            "AlgoFilePackageID": package_id,
            "Type": kind,
            "Url": url,
            "MD5": archive.md5 if md5 is None else md5,
        }
        return self.api.post("/CAP/AlgoFilePackages:pushExecFile", body)

    def detail(self, package_id: str = PACKAGE_ID) -> dict[str, Any]:
        response = self.api.get(f"/CAP/AlgoFilePackages/{package_id}")
        assert response.status_code == 200, response.body
        return response.body["Data"]

    def row(self, package_id: str = PACKAGE_ID) -> AlgoFilePackage:
        return AlgoFilePackage.objects.get(pk=package_id)


@pytest.fixture
def packages(api: Any, file_server: Any) -> Packages:
    return Packages(api, file_server)


@pytest.fixture
def store(settings: Any) -> Path:
    return Path(settings.PACKAGE_STORE)


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """The shared file server, polling for shutdown every 20 ms instead of
    serve_forever's 500 ms, so each test's teardown stays quick."""
    root = tmp_path / "served"
    root.mkdir()
    server = FileServer(root)
    server._thread = threading.Thread(
        target=server._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
