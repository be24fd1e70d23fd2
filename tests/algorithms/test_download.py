"""Downloads over real HTTP: checksum, unreachable hosts, HTTP errors,
transient failures retried, cut transfers resumed with Range, size limits."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from algorithms import fetch
from tests.algorithms.conftest import PACKAGE_ID, Packages, files_under
from tests.support import packages as pkg
from tests.support.http_server import Fault


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_wrong_md5_ends_in_status_4_with_a_reason(packages: Packages, store: Path) -> None:
    archive = pkg.package()
    packages.push(archive, md5="0123456789abcdef0123456789abcdef")

    data = packages.detail()
    assert data["Status"] == 4
    assert "MD5" in data["StatusReason"]
    assert "0123456789abcdef0123456789abcdef" in data["StatusReason"]
    assert archive.md5 in data["StatusReason"]
    assert files_under(store) == set()


def test_md5_given_in_capitals_is_compared_without_case(packages: Packages) -> None:
    archive = pkg.package()
    packages.push(archive, md5=archive.md5.upper())

    assert packages.detail()["Status"] == 2


def test_an_unreachable_url_ends_in_status_4_with_a_reason(packages: Packages) -> None:
    url = f"http://127.0.0.1:{closed_port()}/package.tar"
    response = packages.api.post(
        "/CAP/AlgoFilePackages", {"AlgoFilePackageID": PACKAGE_ID, "Url": url}
    )

    assert response.status_code == 200
    data = packages.detail()
    assert data["Status"] == 4
    assert "connection refused" in data["StatusReason"]
    assert packages.row().attempts == 1


def test_http_404_ends_in_status_4_without_retrying(packages: Packages, file_server: Any) -> None:
    url = file_server.url("missing.tar")
    packages.api.post("/CAP/AlgoFilePackages", {"AlgoFilePackageID": PACKAGE_ID, "Url": url})

    data = packages.detail()
    assert data["Status"] == 4
    assert "404" in data["StatusReason"]
    assert len(file_server.requests) == 1


def test_transient_503_twice_then_success_reaches_status_2(
    packages: Packages, file_server: Any
) -> None:
    file_server.fault("package.tar", Fault(status=503, times=2))

    packages.push(pkg.package())

    assert packages.detail()["Status"] == 2
    assert [r["path"] for r in file_server.requests] == ["package.tar"] * 3


def test_503_on_every_attempt_ends_in_status_4(
    packages: Packages, file_server: Any, settings: Any
) -> None:
    file_server.fault("package.tar", Fault(status=503, times=10))

    packages.push(pkg.package())

    data = packages.detail()
    assert data["Status"] == 4
    assert "503" in data["StatusReason"]
    assert len(file_server.requests) == settings.DOWNLOAD_ATTEMPTS


def test_a_cut_connection_is_resumed_with_a_range_request(
    packages: Packages, file_server: Any
) -> None:
    # the downloader keeps whole chunks (fetch.CHUNK) of a cut transfer, so
    # the file is a little over one chunk and cut inside the second
    archive = pkg.package(extra_files={"model.bin": bytes(range(256)) * 1600})
    assert len(archive.data) > fetch.CHUNK + 100_000
    file_server.fault("package.tar", Fault(cut_after=fetch.CHUNK + 50_000))

    packages.push(archive)

    assert packages.detail()["Status"] == 2
    first, second = (r["range"] for r in file_server.requests)
    assert first is None
    assert second is not None and second.startswith("bytes=") and second.endswith("-")
    assert 0 < int(second[6:-1]) <= fetch.CHUNK + 50_000
    row = packages.row()
    assert row.actual_md5 == archive.md5
    assert row.bytes_done == len(archive.data)


def test_a_cut_connection_without_range_support_starts_over(
    packages: Packages, file_server: Any
) -> None:
    archive = pkg.package(extra_files={"model.bin": bytes(range(256)) * 64})
    file_server.set_ranges(False)
    file_server.fault("package.tar", Fault(cut_after=3000))

    packages.push(archive)

    assert packages.detail()["Status"] == 2
    assert packages.row().actual_md5 == archive.md5
    assert len(file_server.requests) == 2


def test_a_download_over_the_size_limit_ends_in_status_4(
    packages: Packages, file_server: Any, settings: Any
) -> None:
    settings.PACKAGE_MAX_DOWNLOAD_BYTES = 2048
    archive = pkg.package(extra_files={"model.bin": b"x" * 4096})

    packages.push(archive)

    data = packages.detail()
    assert data["Status"] == 4
    assert "limit" in data["StatusReason"]
    assert "2048" in data["StatusReason"]
    assert len(file_server.requests) == 1


def test_a_scheme_other_than_http_is_refused_at_the_door(packages: Packages) -> None:
    response = packages.api.post(
        "/CAP/AlgoFilePackages", {"AlgoFilePackageID": PACKAGE_ID, "Url": "file:///etc/passwd"}
    )

    assert response.status_code == 400
    assert response.body["Message"].startswith("Url:")


def test_progress_is_recorded_as_the_file_arrives(packages: Packages) -> None:
    archive = pkg.package()
    packages.push(archive)

    row = packages.row()
    assert row.bytes_total == len(archive.data)
    assert row.progress == 100
    assert row.heartbeat_at is not None


class _OddServerHandler(BaseHTTPRequestHandler):
    """Serves `body` as a misconfigured or streaming server would: labelled
    `Content-Encoding: gzip`, or chunked with no Content-Length."""

    body = b""
    gzip_label = False
    chunked = False
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if self.gzip_label:
            self.send_header("Content-Encoding", "gzip")
        if self.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(self.body), 1000):
                piece = self.body[start : start + 1000]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(self.body)))
            self.end_headers()
            self.wfile.write(self.body)
        self.close_connection = True


@contextmanager
def odd_server(body: bytes, **behaviour: bool) -> Iterator[str]:
    handler = type("Handler", (_OddServerHandler,), {"body": body, **behaviour})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/package"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_tar_gz_served_with_content_encoding_gzip_keeps_its_md5(packages: Packages) -> None:
    archive = pkg.package(fmt="tar.gz")
    with odd_server(archive.data, gzip_label=True) as url:
        packages.api.post(
            "/CAP/AlgoFilePackages",
            {"AlgoFilePackageID": PACKAGE_ID, "Url": url, "MD5": archive.md5},
        )

    data = packages.detail()
    assert data["Status"] == 2, data["StatusReason"]
    assert packages.row().actual_md5 == archive.md5


def test_a_chunked_download_without_a_length_reaches_status_2(packages: Packages) -> None:
    archive = pkg.package(extra_files={"model.bin": bytes(range(256)) * 40})
    with odd_server(archive.data, chunked=True) as url:
        packages.api.post(
            "/CAP/AlgoFilePackages",
            {"AlgoFilePackageID": PACKAGE_ID, "Url": url, "MD5": archive.md5},
        )

    assert packages.detail()["Status"] == 2
    assert packages.row().bytes_total == len(archive.data)


def test_a_chunked_download_over_the_size_limit_ends_in_status_4(
    packages: Packages, settings: Any, store: Path
) -> None:
    settings.PACKAGE_MAX_DOWNLOAD_BYTES = 5000
    archive = pkg.package(extra_files={"model.bin": bytes(range(256)) * 40})
    with odd_server(archive.data, chunked=True) as url:
        packages.api.post("/CAP/AlgoFilePackages", {"AlgoFilePackageID": PACKAGE_ID, "Url": url})

    data = packages.detail()
    assert data["Status"] == 4
    assert "larger than the limit of 5000 bytes" in data["StatusReason"]
    assert files_under(store) == set()
