"""A real HTTP receiver on 127.0.0.1 standing in for the platform's
ResultReceiveUrl: records what arrives and can refuse (503) on demand."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        with self.server.lock:
            refusing = self.server.refusing
            self.server.attempts += 1
            if not refusing:
                self.server.received.append(
                    {"headers": dict(self.headers.items()), "raw": raw, "body": json.loads(raw)}
                )
        status = 503 if refusing else 200
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    lock: threading.Lock
    received: list[dict[str, Any]]
    refusing: bool
    attempts: int


class Receiver:
    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.lock = threading.Lock()
        self._server.received = []
        self._server.refusing = False
        self._server.attempts = 0
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/events"

    @property
    def received(self) -> list[dict[str, Any]]:
        with self._server.lock:
            return list(self._server.received)

    @property
    def attempts(self) -> int:
        return self._server.attempts

    def refuse(self, refusing: bool = True) -> None:
        with self._server.lock:
            self._server.refusing = refusing

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
