"""The engine's HTTP interface (docs/engine-interface.md), on the standard
library's ThreadingHTTPServer. Every answer is the CAP envelope
{"Code", "Message", "Data", "RequestID"}."""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import __version__
from .config import EngineConfig
from .detector import Detector, make_detector
from .events import EventSender
from .rules import ValidationError, parse_task_info
from .task import ERROR, FINISHED, PAUSED, Task

log = logging.getLogger("engine.http")

CODE_INVALID = 40000
CODE_NOT_JSON = 40001
CODE_NOT_FOUND = 40400
CODE_UNKNOWN_URI = 40401
CODE_METHOD = 40500
CODE_CONFLICT = 40900
CODE_TOO_LARGE = 41300
CODE_INTERNAL = 50000
CODE_AT_CAPACITY = 50300
CODE_SHUTTING_DOWN = 50301

MAX_BODY = 1024 * 1024
MAX_TASK_ID = 128


class ApiError(Exception):
    def __init__(self, http: int, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.http, self.code, self.message, self.data = http, code, message, data


def invalid(field: str, message: str) -> ApiError:
    return ApiError(
        400,
        CODE_INVALID,
        f"{field}: {message}",
        {"Errors": [{"Field": field, "Message": message}]},
    )


class Engine:
    """The tasks of this engine and the operations on them."""

    def __init__(self, config: EngineConfig) -> None:
        self.config = config
        self.sender = EventSender(
            config.event_sink_url,
            config.event_sink_token,
            queue_size=config.event_queue,
            attempts=config.event_attempts,
        )
        self.tasks: dict[str, Task] = {}
        self.lock = threading.Lock()
        self.closing = False
        # fail at start, not in a task, when the detector cannot be built
        self.detector_factory()

    def detector_factory(self) -> Detector:
        options: dict[str, Any] = {}
        if self.config.detector == "hog":
            options = {"working_height": self.config.detect_height, "scale": self.config.hog_scale}
        elif self.config.detector == "ssdlite":
            options = {
                "model_path": self.config.model_path,
                "threads": self.config.detector_threads,
            }
        return make_detector(self.config.detector, **options)

    def _active(self) -> int:
        return sum(1 for t in self.tasks.values() if t.active)

    def health(self) -> dict[str, Any]:
        with self.lock:
            tasks = list(self.tasks.values())
        by_status: dict[str, int] = {}
        for t in tasks:
            by_status[t.status] = by_status.get(t.status, 0) + 1
        return {
            "Status": "STOPPING" if self.closing else "READY",
            "EngineID": self.config.engine_id,
            "Capacity": {"Stream_Video_Quota": self.config.capacity},
            "Tasks": sum(1 for t in tasks if t.active),
            "TasksByStatus": by_status,
            "Version": __version__,
            "Pid": os.getpid(),
            "Detector": self.config.detector,
            "AnalysisFps": self.config.analysis_fps,
            "Delivery": self.sender.stats(),
        }

    def _get(self, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            raise ApiError(404, CODE_NOT_FOUND, f"task {task_id!r} does not exist")
        return task

    def create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid("body", "must be a JSON object")
        task_id = body.get("TaskID")
        if not isinstance(task_id, str) or not task_id.strip():
            raise invalid("TaskID", "is required (a non-empty string)")
        if len(task_id) > MAX_TASK_ID:
            raise invalid("TaskID", f"must be at most {MAX_TASK_ID} characters")
        spec = _parse(body)
        with self.lock:
            if self.closing:
                raise ApiError(503, CODE_SHUTTING_DOWN, "engine is shutting down")
            if task_id in self.tasks:
                raise ApiError(409, CODE_CONFLICT, f"task {task_id!r} already exists")
            if self._active() >= self.config.capacity:
                raise ApiError(
                    503,
                    CODE_AT_CAPACITY,
                    f"engine at capacity: {self.config.capacity} of "
                    f"{self.config.capacity} stream slots in use",
                )
            task = Task(task_id, spec, self.config, self.sender, self.detector_factory)
            self.tasks[task_id] = task
            task.start()
        return task.detail()

    def update(self, task_id: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise invalid("body", "must be a JSON object")
        spec = _parse(body)
        with self.lock:
            task = self._get(task_id)
            url_changed = task.update(spec)
            if url_changed and task.needs_restart():
                # a FINISHED/ERROR task given a new stream runs again
                if self._active() >= self.config.capacity:
                    raise ApiError(
                        503, CODE_AT_CAPACITY, "engine at capacity: cannot restart the task"
                    )
                task = Task(task_id, spec, self.config, self.sender, self.detector_factory)
                if self.tasks[task_id].paused:
                    task.pause()
                self.tasks[task_id] = task
                task.start()
        return task.detail()

    def delete(self, task_id: str) -> None:
        with self.lock:
            task = self.tasks.pop(task_id, None)
        if task is not None:
            task.stop(join_s=1.0)

    def pause(self, task_id: str) -> dict[str, Any]:
        with self.lock:
            task = self._get(task_id)
        if task.status in (FINISHED,) or (task.status == ERROR and not task.active):
            raise ApiError(409, CODE_CONFLICT, f"task {task_id!r} is {task.status}")
        task.pause()
        return task.detail()

    def resume(self, task_id: str) -> dict[str, Any]:
        with self.lock:
            task = self._get(task_id)
        if task.status in (FINISHED,) or (task.status == ERROR and not task.active):
            raise ApiError(409, CODE_CONFLICT, f"task {task_id!r} is {task.status}")
        if task.paused or task.status == PAUSED:
            task.resume()
        return task.detail()

    def detail(self, task_id: str) -> dict[str, Any]:
        with self.lock:
            task = self._get(task_id)
        return task.detail()

    def list(self) -> dict[str, Any]:
        with self.lock:
            tasks = list(self.tasks.values())
        return {"Tasks": [t.detail() for t in tasks]}

    def events(self, task_id: str | None) -> dict[str, Any]:
        recent = list(self.sender.recent)
        if task_id:
            recent = [e for e in recent if e.get("TaskID") == task_id]
        return {"Events": recent}

    def shutdown(self, join_s: float = 3.0) -> None:
        with self.lock:
            self.closing = True
            tasks = list(self.tasks.values())
        for t in tasks:
            t.signal_stop()
        for t in tasks:
            t.stop(join_s=join_s / max(1, len(tasks)))
        self.sender.close(flush_s=1.0)


def _parse(body: dict[str, Any]) -> Any:
    if "TaskInfo" not in body:
        raise invalid("TaskInfo", "is required")
    try:
        return parse_task_info(body["TaskInfo"])
    except ValidationError as exc:
        raise invalid(exc.field, exc.message) from None


class Handler(BaseHTTPRequestHandler):
    server_version = f"reference-engine/{__version__}"
    protocol_version = "HTTP/1.1"
    engine: Engine  # set on the subclass made by make_server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        request_id = self.headers.get("X-Request-ID") or str(uuid.uuid4())
        try:
            data = self._route(method)
            self._send(200, 0, "success", data, request_id)
        except ApiError as exc:
            self._send(exc.http, exc.code, exc.message, exc.data, request_id)
        except Exception as exc:
            log.exception("%s %s failed", method, self.path)
            self._send(500, CODE_INTERNAL, f"engine error: {exc}", None, request_id)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ApiError(413, CODE_TOO_LARGE, f"request body over {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, CODE_NOT_JSON, f"request body is not valid JSON: {exc}") from None

    def _route(self, method: str) -> Any:
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        engine = self.engine
        if path == "/Health":
            self._only(method, "GET")
            return engine.health()
        if path == "/Images:analyze":  # one still image, answered synchronously (images.py)
            from .images import analyze_request

            self._only(method, "POST")
            return analyze_request(engine, self)
        if path == "/Events":
            self._only(method, "GET")
            task_id = parse_qs(parts.query).get("TaskID", [""])[0]
            return engine.events(task_id or None)
        if path == "/AlgoTasks":
            if method == "GET":
                return engine.list()
            self._only(method, "POST", "GET or POST")
            return engine.create(self._body())
        if path.startswith("/AlgoTasks/"):
            rest = unquote(path[len("/AlgoTasks/") :])
            for action in (":pause", ":resume"):
                if rest.endswith(action):
                    self._only(method, "POST")
                    task_id = rest[: -len(action)]
                    return engine.pause(task_id) if action == ":pause" else engine.resume(task_id)
            if method == "GET":
                return engine.detail(rest)
            if method == "PUT":
                return engine.update(rest, self._body())
            self._only(method, "DELETE", "GET, PUT or DELETE")
            engine.delete(rest)
            return {}
        raise ApiError(404, CODE_UNKNOWN_URI, f"no such URI: {parts.path}")

    def _only(self, method: str, allowed: str, listed: str = "") -> None:
        if method != allowed:
            raise ApiError(
                405, CODE_METHOD, f"method {method} not allowed here (use {listed or allowed})"
            )

    def _send(self, http: int, code: int, message: str, data: Any, request_id: str) -> None:
        envelope: dict[str, Any] = {"Code": code, "Message": message[:1024]}
        if data is not None:
            envelope["Data"] = data
        envelope["RequestID"] = request_id
        body = json.dumps(envelope, ensure_ascii=False).encode()
        # the body may not have been read on an early failure: drain it so the
        # connection stays usable
        self.send_response(http, HTTPStatus(http).phrase)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-ID", request_id)
        if http >= 400 and self.command in ("POST", "PUT"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)


class EngineServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(engine: Engine) -> EngineServer:
    handler = type("BoundHandler", (Handler,), {"engine": engine})
    return EngineServer((engine.config.host, engine.config.port), handler)
