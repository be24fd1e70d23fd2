"""A stand-in algorithm engine for the runtime tests: Python stdlib only, so
it runs on the host and in the python3-only base image.

GET /Health -> 200 {"Status": "ok", "Pid": ..., "Port": ...}
GET /Env    -> 200 the process environment as JSON
GET /Burn?s=N  -> busy-loops one thread for N seconds (CPU for the stats tests)

Environment: ENGINE_PORT (default 8750), ENGINE_HOST (default 127.0.0.1),
ENGINE_ALLOC_MB (allocate and touch that much memory at start),
ENGINE_IGNORE_TERM=1 (ignore SIGTERM, to test the SIGKILL escalation).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT = int(os.environ.get("ENGINE_PORT", "8750"))
HOST = os.environ.get("ENGINE_HOST", "127.0.0.1")


def burn(seconds: float) -> None:
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1


class Handler(BaseHTTPRequestHandler):
    def _json(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        url = urlparse(self.path)
        if url.path == "/Health":
            self._json({"Status": "ok", "Pid": os.getpid(), "Port": PORT})
        elif url.path == "/Env":
            self._json(dict(os.environ))
        elif url.path == "/Burn":
            seconds = float(parse_qs(url.query).get("s", ["1"])[0])
            threading.Thread(target=burn, args=(seconds,), daemon=True).start()
            self._json({"Burning": seconds})
        else:
            self.send_error(404)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write("engine-stub request: " + (format % args) + "\n")


def main() -> None:
    if os.environ.get("ENGINE_IGNORE_TERM") == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:

        def on_term(signum: int, frame: object) -> None:
            print("engine-stub got SIGTERM, exiting", flush=True)
            sys.exit(0)

        signal.signal(signal.SIGTERM, on_term)
    ballast = b""
    alloc_mb = int(os.environ.get("ENGINE_ALLOC_MB", "0"))
    if alloc_mb:
        print(f"engine-stub allocating {alloc_mb} MB", flush=True)
        ballast = b"x" * (alloc_mb << 20)
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    print(f"engine-stub listening on {HOST}:{PORT} pid {os.getpid()}", flush=True)
    print("engine-stub says hello on stderr", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        del ballast


if __name__ == "__main__":
    main()
