"""A real HTTP file server on 127.0.0.1 for tests: serves a folder with
Range support, and injects faults on request (status codes, connections
cut after N bytes) so retries and resumes are exercised for real."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Fault:
    status: int | None = None  # answer this status instead of the file
    cut_after: int | None = None  # close the connection after this many body bytes
    times: int = 1  # how many requests get the fault


@dataclass
class Log:
    requests: list[dict[str, Any]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        server = self.server
        name = self.path.split("?", 1)[0].lstrip("/")
        server.log.requests.append({"path": name, "range": self.headers.get("Range")})
        fault = server.take_fault(name)
        if fault is not None and fault.status is not None:
            self.send_response(fault.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path = server.root / name
        if not name or not path.is_file():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = path.read_bytes()
        start = 0
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes=") and server.ranges:
            start = int(ranged[6:].split("-", 1)[0] or 0)
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes" if server.ranges else "none")
        self.end_headers()
        if fault is not None and fault.cut_after is not None:
            self.wfile.write(body[: fault.cut_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    root: Path
    faults: dict[str, Fault]
    log: Log
    ranges: bool

    def take_fault(self, name: str) -> Fault | None:
        with self.lock:
            fault = self.faults.get(name)
            if fault is None or fault.times <= 0:
                return None
            fault.times -= 1
            return fault


class FileServer:
    def __init__(self, root: Path, *, ranges: bool = True) -> None:
        self.root = root
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.root = root
        self._server.faults = {}
        self._server.log = Log()
        self._server.ranges = ranges
        self._server.lock = threading.Lock()  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def add(self, name: str, data: bytes) -> str:
        (self.root / name).write_bytes(data)
        return self.url(name)

    def fault(self, name: str, fault: Fault) -> None:
        self._server.faults[name] = fault

    @property
    def requests(self) -> list[dict[str, Any]]:
        return self._server.log.requests

    def set_ranges(self, enabled: bool) -> None:
        self._server.ranges = enabled

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
