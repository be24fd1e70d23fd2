"""A minimal engine for service and task tests (standard library only).

It serves the engine interface (docs/engine-interface.md) on ENGINE_PORT
like any vendor's engine: /Health and /AlgoTasks. It analyses nothing;
tests drive it through two extra endpoints, as a camera and a detector
would: POST /_control/<TaskID> sets the task's Status/Reason, POST
/_emit/<TaskID> makes it post an event to EVENT_SINK_URL."""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TASKS: dict[str, dict] = {}
LOCK = threading.Lock()
# an 8x8 grey JPEG, as a snapshot
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAIBAQEBAQIBAQECAgICAgQDAgICAgUEBAMEBgUGBgYFBgYGBwkIBgcJ"
    "BwYGCAsICQoKCgoKBggLDAsKDAkKCgr/2wBDAQICAgICAgUDAwUKBwYHCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoK"
    "CgoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgr/wAARCAAIAAgDASIAAhEBAxEB/8QAHwAAAQUBAQEBAQEAAAAAAAAA"
    "AAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAk"
    "M2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKT"
    "lJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/8QA"
    "HwEAAwEBAQEBAQEBAQAAAAAAAAECAwQFBgcICQoL/8QAtREAAgECBAQDBAcFBAQAAQJ3AAECAxEEBSExBhJBUQdh"
    "cRMiMoEIFEKRobHBCSMzUvAVYnLRChYkNOEl8RcYGRomJygpKjU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hp"
    "anN0dXZ3eHl6goOEhYaHiImKkpOUlZaXmJmaoqOkpaanqKmqsrO0tba3uLm6wsPExcbHyMnK0tPU1dbX2Nna4uPk"
    "5ebn6Onq8vP09fb3+Pn6/9oADAMBAAIRAxEAPwD9IKKKKAP/2Q=="
)


def envelope(data: object = None, code: int = 0, message: str = "success") -> dict:
    body: dict = {"Code": code, "Message": message, "RequestID": ""}
    if data is not None:
        body["Data"] = data
    return body


def capacity() -> int:
    return int(os.environ.get("ENGINE_CAPACITY", "1"))


def emit(task_id: str, event_id: str) -> int:
    document = {
        "EventKey": uuid.uuid4().hex,
        "TaskID": task_id,
        "EventID": event_id,
        "AreaID": "0",
        "EventTime": int(time.time() * 1000),
        "EngineID": os.environ.get("ENGINE_ID", ""),
        "Objects": [
            {"Type": "person", "Confidence": 0.9, "Box": {"X": 0.1, "Y": 0.1, "W": 0.2, "H": 0.5}}
        ],
        "Snapshot": base64.b64encode(JPEG).decode(),
        "SnapshotFormat": "jpeg",
        "Width": 8,
        "Height": 8,
    }
    request = urllib.request.Request(
        os.environ["EVENT_SINK_URL"],
        data=json.dumps(document).encode(),
        headers={
            "Content-Type": "application/json",
            "Authorization": f"Bearer {os.environ.get('EVENT_SINK_TOKEN', '')}",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


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

    def _body(self) -> dict:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"{}")

    def do_GET(self) -> None:
        if self.path == "/Health":
            with LOCK:
                running = len(TASKS)
            data = {
                "Status": "READY",
                "EngineID": os.environ.get("ENGINE_ID", ""),
                "Capacity": {"Stream_Video_Quota": capacity()},
                "Tasks": running,
                "Env": {
                    k: v for k, v in os.environ.items() if k.startswith(("ENGINE_", "K", "LOG"))
                },
                "Args": sys.argv[1:],
                "Pid": os.getpid(),
            }
            self._send(200, envelope(data))
        elif self.path == "/AlgoTasks":
            with LOCK:
                self._send(200, envelope({"Tasks": list(TASKS.values())}))
        elif self.path.startswith("/AlgoTasks/"):
            task_id = self.path.split("/", 2)[2]
            with LOCK:
                task = TASKS.get(task_id)
            if task is None:
                self._send(404, envelope(code=40400, message=f"no task {task_id}"))
            else:
                self._send(200, envelope(task))
        else:
            self._send(404, envelope(code=40401, message="no such path"))

    def do_POST(self) -> None:
        if self.path == "/AlgoTasks":
            body = self._body()
            task_id = body.get("TaskID", "")
            with LOCK:
                if task_id in TASKS:
                    self._send(409, envelope(code=40900, message=f"task {task_id} exists"))
                    return
                if len(TASKS) >= capacity():
                    self._send(503, envelope(code=50300, message="engine at capacity"))
                    return
                TASKS[task_id] = {
                    "TaskID": task_id,
                    "Status": "RUNNING",
                    "Reason": "",
                    "Stats": {"FramesAnalysed": 0},
                    "TaskInfo": body.get("TaskInfo"),
                }
            self._send(200, envelope({"TaskID": task_id}))
        elif self.path.startswith("/_control/"):
            task_id = self.path.split("/", 2)[2]
            body = self._body()
            with LOCK:
                if task_id in TASKS:
                    TASKS[task_id].update(body)
            self._send(200, envelope())
        elif self.path.startswith("/_emit/"):
            task_id = self.path.split("/", 2)[2]
            body = self._body()
            status = emit(task_id, body.get("EventID", ""))
            self._send(200, envelope({"SinkStatus": status}))
        else:
            self._send(404, envelope(code=40401, message="no such path"))

    def do_PUT(self) -> None:
        task_id = self.path.split("/", 2)[2] if self.path.startswith("/AlgoTasks/") else ""
        body = self._body()
        with LOCK:
            if task_id not in TASKS:
                self._send(404, envelope(code=40400, message=f"no task {task_id}"))
                return
            TASKS[task_id]["TaskInfo"] = body.get("TaskInfo")
        self._send(200, envelope({"TaskID": task_id}))

    def do_DELETE(self) -> None:
        task_id = self.path.split("/", 2)[2] if self.path.startswith("/AlgoTasks/") else ""
        with LOCK:
            TASKS.pop(task_id, None)
        self._send(200, envelope())


def main() -> None:
    server = ThreadingHTTPServer(
        (os.environ.get("ENGINE_HOST", "127.0.0.1"), int(os.environ["ENGINE_PORT"])), Handler
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"stub engine on {server.server_address}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
