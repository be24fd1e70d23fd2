"""A tiny engine for the /CCP tests (stdlib only, baked into a test image):
GET /Health answers the engine interface's envelope with Status READY;
GET /Env the environment. Listens on ENGINE_HOST:ENGINE_PORT."""

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(os.environ.get("ENGINE_PORT", "8750"))
HOST = os.environ.get("ENGINE_HOST", "127.0.0.1")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/Health":
            data = {"Status": "READY", "EngineID": os.environ.get("ENGINE_ID", ""), "Port": PORT}
        elif self.path == "/Env":
            data = dict(os.environ)
        else:
            self.send_error(404)
            return
        body = json.dumps({"Code": 0, "Message": "success", "Data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
server = ThreadingHTTPServer((HOST, PORT), Handler)
print(f"ENGINE READY http://{HOST}:{PORT}", flush=True)
server.serve_forever()
