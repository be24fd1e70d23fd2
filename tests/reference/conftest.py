"""Real parts for the reference engine's tests: cached footage, the engine as a
subprocess on a free loopback port, an HTTP receiver for its events, and the
artifact package that `build_reference_package` builds."""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FETCH = ROOT / "scripts" / "fetch-test-media.sh"
CLIPS = ("vtest.avi", "vtest_8s.mp4")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def build_reference_package(
    out: Path, package_id: str, *extra: str, form: str = "artifact"
) -> tuple[Path, str]:
    """`manage.py build_reference_package --form FORM` into `out`, with the
    command's further options `extra`: (the package, its MD5)."""
    from algorithms.management.commands.build_reference_package import build

    return build(form, out, package_id, *extra)


@pytest.fixture(scope="session")
def media() -> Path:
    """The folder with vtest.avi and the derived clips; fetched once, cached."""
    return media_folder()


def media_folder() -> Path:
    """The `media` fixture's work (other test packages call it for theirs):
    fetched once, cached; skipped without footage, failed with CI=true."""
    cache = Path(os.environ.get("FACILITY_CACHE_DIR", ".cache"))
    folder = (cache if cache.is_absolute() else ROOT / cache) / "media"
    if all((folder / c).is_file() for c in CLIPS):
        return folder
    env = {**os.environ, "PYTHON": sys.executable}
    try:
        run = subprocess.run(
            ["bash", str(FETCH)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
        )
        why = f"scripts/fetch-test-media.sh exited {run.returncode}: {run.stderr[-800:]}"
        ok = run.returncode == 0
    except (OSError, subprocess.TimeoutExpired) as exc:
        why, ok = f"scripts/fetch-test-media.sh failed: {exc}", False
    if ok and all((folder / c).is_file() for c in CLIPS):
        return folder
    if _in_ci():
        pytest.fail(f"test footage missing in CI: {why}")
    pytest.skip(f"test footage (vtest.avi from Debian's opencv-doc) unavailable: {why}")


@pytest.fixture(scope="session")
def ssdlite_model() -> Path:
    """The neural detector's ONNX model (scripts/fetch-detector.sh)."""
    return ssdlite_model_path()


def ssdlite_model_path() -> Path:
    """The `ssdlite_model` fixture's work (other test packages call it for
    theirs): converted once, cached; skipped without it, failed with CI=true."""
    from algorithms.reference.cache import default_model

    model = default_model()
    if model.is_file():
        return model
    try:
        run = subprocess.run(
            ["bash", str(ROOT / "scripts" / "fetch-detector.sh")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        why = f"scripts/fetch-detector.sh exited {run.returncode}: {run.stderr[-800:]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        why = f"scripts/fetch-detector.sh failed: {exc}"
    if model.is_file():
        return model
    if _in_ci():
        pytest.fail(f"the SSDLite model is missing in CI: {why}")
    pytest.skip(f"the SSDLite model is unavailable: {why}")


# --------------------------------------------------------------- receiver


@dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Receiver:
    """Collects the events POSTed to it. ``fail_next`` answers that many
    requests with 503 first, to exercise the engine's retries."""

    url: str = ""
    events: list[Received] = field(default_factory=list)
    attempts: int = 0
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def for_task(self, task_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r.body for r in self.events if r.body.get("TaskID") == task_id]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with rec.lock:
                rec.attempts += 1
                fail = rec.fail_next > 0
                if fail:
                    rec.fail_next -= 1
                else:
                    rec.events.append(Received(dict(self.headers), json.loads(raw)))
            self.send_response(503 if fail else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/events"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec
    server.shutdown()
    server.server_close()


# ----------------------------------------------------------------- engine


class EngineProcess:
    def __init__(self, proc: subprocess.Popen[str], url: str, log: Path) -> None:
        self.proc, self.url, self.log = proc, url, log

    def call(
        self, method: str, path: str, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, dict[str, Any]]:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, env = self.call(method, path, body)
        assert (status, env["Code"]) == (200, 0), (status, env)
        return env.get("Data")

    def detail(self, task_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/AlgoTasks/{task_id}")

    def wait_for(
        self, task_id: str, check: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            d = self.detail(task_id)
            if check(d):
                return d
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting on {task_id}: {d}\n{self.tail()}")
            time.sleep(0.1)

    def tail(self) -> str:
        try:
            return self.log.read_text()[-3000:]
        except OSError:
            return ""

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def start_engine(
    log: Path, cwd: Path = ROOT, module: str = "algorithms.reference.engine", **env: str
) -> EngineProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_", "EVENT_SINK_"))}
    full.update({"ENGINE_PORT": "0", "ENGINE_HOST": "127.0.0.1", "PYTHONPATH": "", **env})
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=cwd,
            env=full,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = ""
    if sel.select(timeout=30):
        line = proc.stdout.readline()
    sel.close()
    if not line.startswith("ENGINE READY "):
        proc.kill()
        proc.wait()
        raise AssertionError(f"engine did not start: {line!r}\n{log.read_text()[-3000:]}")
    url = line.split()[2]
    return EngineProcess(proc, url, log)


@pytest.fixture(scope="module")
def engine(
    receiver: Receiver, media: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EngineProcess]:
    """An engine reading files as fast as it can, posting to ``receiver``; 2.5
    analysed fps keeps the suite fast on 2 cores."""
    log = tmp_path_factory.mktemp("engine") / "engine.log"
    eng = start_engine(
        log,
        EVENT_SINK_URL=receiver.url,
        EVENT_SINK_TOKEN="sink-secret",
        ENGINE_ID="test-engine",
        ENGINE_FILE_SPEED="0",
        ENGINE_ANALYSIS_FPS="2.5",
        ENGINE_CAPACITY="6",
    )
    yield eng
    eng.stop()


# ----------------------------------------------------------------- bodies


def polygon(x0: float, y0: float, x1: float, y1: float) -> list[dict[str, float]]:
    return [
        {"PointX": x0, "PointY": y0},
        {"PointX": x1, "PointY": y0},
        {"PointX": x1, "PointY": y1},
        {"PointX": x0, "PointY": y1},
    ]


FULL = (0.0, 0.0, 1.0, 1.0)


def task_body(
    task_id: str | None,
    url: str,
    *,
    area: tuple[float, float, float, float] = FULL,
    masks: tuple[tuple[float, float, float, float], ...] = (),
    duration: float | None = None,
    repeat: float | None = None,
    event_id: str | None = "PERSON_IN_AREA",
    sensitivity: Any = None,
) -> dict[str, Any]:
    ext: dict[str, Any] = {}
    if duration is not None:
        ext["DurationThreshold"] = duration
    if repeat is not None:
        ext["RepeatAlarmIntervalThreshold"] = repeat
    if sensitivity is not None:
        ext["Sensitivity"] = sensitivity
    body: dict[str, Any] = {
        "TaskInfo": {
            "RulesParams": [
                {
                    "Areas": [{"AreaID": 7, "AreaType": "POLYGON", "Points": polygon(*area)}],
                    "Masks": [
                        {"AreaID": f"m{i}", "AreaType": "POLYGON", "Points": polygon(*m)}
                        for i, m in enumerate(masks)
                    ],
                    "EventID": event_id,
                    "ExtendParams": ext,
                    "Labels": {},
                    "ResultReceiveUrl": [],
                }
            ],
            "StreamOptions": {"VideoStreamOptions": {"Url": url, "Resolution": "PIXELS_40W"}},
        }
    }
    if task_id is not None:
        body["TaskID"] = task_id
    return body
