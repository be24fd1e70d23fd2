"""A minimal engine for service tests (standard library only): answers the
engine interface's GET /Health on ENGINE_PORT, like any vendor's engine
would, and records its environment for the tests to read."""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/Health":
            data = {
                "Status": "READY",
                "EngineID": os.environ.get("ENGINE_ID", ""),
                "Capacity": {"Stream_Video_Quota": int(os.environ.get("ENGINE_CAPACITY", "1"))},
                "Tasks": 0,
                "Env": {
                    k: v for k, v in os.environ.items() if k.startswith(("ENGINE_", "K", "LOG"))
                },
                "Args": sys.argv[1:],
                "Pid": os.getpid(),
            }
            self._send(200, {"Code": 0, "Message": "success", "Data": data, "RequestID": ""})
        else:
            self._send(404, {"Code": 40401, "Message": "no such path", "RequestID": ""})


def main() -> None:
    server = ThreadingHTTPServer(
        (os.environ.get("ENGINE_HOST", "127.0.0.1"), int(os.environ["ENGINE_PORT"])), Handler
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"stub engine on {server.server_address}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
