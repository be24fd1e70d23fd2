"""The reference engine as a real subprocess, on real footage (vtest.avi from
Debian's opencv-doc), posting events to a real HTTP receiver."""

from __future__ import annotations

import base64
import itertools
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.reference.conftest import ROOT, EngineProcess, Receiver, start_engine, task_body


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def finished(d: dict) -> bool:
    return d["Status"] in ("FINISHED", "ERROR")


def test_health_reports_ready_with_capacity_and_engine_id(engine: EngineProcess) -> None:
    status, env = engine.call("GET", "/Health")
    assert status == 200 and env["Code"] == 0 and env["Message"] == "success"
    data = env["Data"]
    assert data["Status"] == "READY"
    assert data["EngineID"] == "test-engine"
    assert data["Capacity"] == {"Stream_Video_Quota": 6}
    assert isinstance(data["Tasks"], int)
    assert data["Version"]
    assert env["RequestID"]


def test_people_in_a_full_frame_area_raise_events_with_snapshots(
    engine: EngineProcess, receiver: Receiver, media: Path
) -> None:
    clip = str(media / "vtest_8s.mp4")
    created = engine.ok("POST", "/AlgoTasks", task_body("full", clip, repeat=1))
    assert created["TaskID"] == "full"
    assert created["Status"] in ("PENDING", "RUNNING", "FINISHED")
    done = engine.wait_for("full", finished)
    assert done["Status"] == "FINISHED" and done["Reason"] == ""
    stats = done["Stats"]
    assert stats["FramesDecoded"] == 80  # 8 s at 10 fps, every frame decoded
    assert 19 <= stats["FramesAnalysed"] <= 21  # 2.5 per second of video time
    assert stats["Events"] >= 4  # people are in view all the time: one per second
    deadline = time.monotonic() + 10
    while len(receiver.for_task("full")) < stats["Events"] and time.monotonic() < deadline:
        time.sleep(0.1)
    events = receiver.for_task("full")
    assert len(events) == stats["Events"]
    assert len({e["EventKey"] for e in events}) == len(events)
    times = [e["EventTime"] for e in events]
    assert times == sorted(times)
    assert all(b - a >= 1000 - 1 for a, b in itertools.pairwise(times))
    event = events[0]
    assert event["EventID"] == "PERSON_IN_AREA"
    assert event["AreaID"] == 7
    assert event["EngineID"] == "test-engine"
    assert (event["Width"], event["Height"]) == (768, 576)
    assert event["SnapshotFormat"] == "jpeg"
    assert abs(event["EventTime"] / 1000 - time.time()) < 3600
    image = cv2.imdecode(np.frombuffer(base64.b64decode(event["Snapshot"]), np.uint8), 1)
    assert image is not None and image.shape == (576, 768, 3)
    assert event["Objects"]
    for obj in event["Objects"]:
        assert obj["Type"] == "person"
        assert 0 < obj["Confidence"] <= 1
        box = obj["Box"]
        assert 0 <= box["X"] <= 1 and 0 <= box["Y"] <= 1
        assert 0 < box["W"] <= 1 and 0 < box["H"] <= 1
        assert box["H"] > box["W"]  # upright people
    received = next(r for r in receiver.events if r.body["TaskID"] == "full")
    assert received.headers["Authorization"] == "Bearer sink-secret"
    assert received.headers["Idempotency-Key"] == received.body["EventKey"]
    engine.ok("DELETE", "/AlgoTasks/full")


def test_an_empty_area_or_a_mask_over_everything_raises_nothing(
    engine: EngineProcess, receiver: Receiver, media: Path
) -> None:
    clip = str(media / "vtest_8s.mp4")
    # nobody walks on the grass strip at the bottom of the frame
    engine.ok("POST", "/AlgoTasks", task_body("corner", clip, area=(0.0, 0.9, 1.0, 1.0)))
    engine.ok(
        "POST", "/AlgoTasks", task_body("masked", clip, masks=((0.0, 0.0, 1.0, 1.0),), repeat=1)
    )
    for task_id in ("corner", "masked"):
        done = engine.wait_for(task_id, finished)
        assert done["Status"] == "FINISHED"
        assert done["Stats"]["FramesAnalysed"] >= 19
        assert done["Stats"]["Events"] == 0
        assert receiver.for_task(task_id) == []
        engine.ok("DELETE", f"/AlgoTasks/{task_id}")


def test_duration_and_repeat_thresholds_limit_events(
    engine: EngineProcess, receiver: Receiver, media: Path
) -> None:
    clip = str(media / "vtest_8s.mp4")
    cases = {
        "every-second": {"repeat": 1},
        "big-repeat": {"repeat": 600},
        "long-duration": {"duration": 60},
        "short-duration": {"duration": 3, "repeat": 600},
    }
    for task_id, params in cases.items():
        engine.ok("POST", "/AlgoTasks", task_body(task_id, clip, **params))
    counts = {}
    for task_id in cases:
        done = engine.wait_for(task_id, finished, timeout=60)
        assert done["Status"] == "FINISHED"
        counts[task_id] = done["Stats"]["Events"]
    assert counts["every-second"] >= 4
    assert counts["big-repeat"] == 1
    assert counts["long-duration"] == 0  # an 8 s clip never lasts 60 s
    assert counts["short-duration"] == 1
    for task_id in cases:
        engine.ok("DELETE", f"/AlgoTasks/{task_id}")


def test_pause_stops_the_frame_counter_and_resume_continues(
    engine: EngineProcess, media: Path
) -> None:
    engine.ok("POST", "/AlgoTasks", task_body("pausing", str(media / "vtest.avi"), event_id=None))
    engine.wait_for("pausing", lambda d: d["Stats"]["FramesDecoded"] > 5)
    paused = engine.ok("POST", "/AlgoTasks/pausing:pause")
    assert paused["Status"] == "PAUSED"
    # the frame in flight settles (its HOG run can take seconds on a loaded CPU)
    before = engine.detail("pausing")["Stats"]
    for _ in range(20):
        time.sleep(0.5)
        settled, before = before, engine.detail("pausing")["Stats"]
        if settled["FramesAnalysed"] == before["FramesAnalysed"]:
            break
    time.sleep(1.0)
    after = engine.detail("pausing")
    assert after["Status"] == "PAUSED"
    assert after["Stats"]["FramesDecoded"] == before["FramesDecoded"]
    assert after["Stats"]["FramesAnalysed"] == before["FramesAnalysed"]
    engine.ok("POST", "/AlgoTasks/pausing:resume")
    resumed = engine.wait_for(
        "pausing", lambda d: d["Stats"]["FramesDecoded"] > before["FramesDecoded"] + 5
    )
    assert resumed["Status"] == "RUNNING" and resumed["Reason"] == ""
    assert resumed["Stats"]["Reconnects"] == 0
    listed = engine.ok("GET", "/AlgoTasks")["Tasks"]
    assert "pausing" in [t["TaskID"] for t in listed]
    engine.ok("DELETE", "/AlgoTasks/pausing")
    status, env = engine.call("GET", "/AlgoTasks/pausing")
    assert (status, env["Code"]) == (404, 40400)
    engine.ok("DELETE", "/AlgoTasks/pausing")  # idempotent


def test_update_replaces_rules_without_reopening_the_stream(
    engine: EngineProcess, media: Path
) -> None:
    clip = str(media / "vtest.avi")
    engine.ok("POST", "/AlgoTasks", task_body("updating", clip, event_id=None))
    engine.wait_for("updating", lambda d: d["Stats"]["FramesDecoded"] > 5)
    updated = engine.ok("PUT", "/AlgoTasks/updating", task_body(None, clip, repeat=1))
    assert updated["TaskInfo"]["RulesParams"][0]["EventID"] == "PERSON_IN_AREA"
    before = updated["Stats"]["FramesDecoded"]
    d = engine.wait_for("updating", lambda d: d["Stats"]["Events"] >= 1)
    assert d["Stats"]["FramesDecoded"] > before  # the same stream went on: no restart
    assert d["Stats"]["Reconnects"] == 0
    # a new Url reopens the stream: the short clip then finishes
    engine.ok("PUT", "/AlgoTasks/updating", task_body(None, str(media / "vtest_8s.mp4")))
    done = engine.wait_for("updating", finished, timeout=60)
    assert done["Status"] == "FINISHED"
    assert done["TaskInfo"]["StreamOptions"]["VideoStreamOptions"]["Url"].endswith("vtest_8s.mp4")
    engine.ok("DELETE", "/AlgoTasks/updating")


def test_an_unreachable_rtsp_stream_reports_why_and_keeps_reconnecting(
    engine: EngineProcess,
) -> None:
    url = f"rtsp://127.0.0.1:{closed_port()}/x"
    engine.ok("POST", "/AlgoTasks", task_body("nostream", url))
    d = engine.wait_for("nostream", lambda d: d["Stats"]["Reconnects"] >= 2, timeout=15)
    assert d["Status"] == "ERROR"
    assert d["Reason"] == "stream unreachable: connection refused"
    assert d["Live"] is True
    assert d["Stats"]["FramesDecoded"] == 0 and d["Stats"]["LastFrameAgeMs"] is None
    engine.ok("DELETE", "/AlgoTasks/nostream")


def test_a_missing_file_is_an_error_with_the_path(engine: EngineProcess, tmp_path: Path) -> None:
    missing = tmp_path / "nope.mp4"
    engine.ok("POST", "/AlgoTasks", task_body("nofile", f"file://{missing}"))
    d = engine.wait_for("nofile", finished)
    assert d["Status"] == "ERROR"
    assert d["Reason"] == f"file not found: {missing}"
    engine.ok("DELETE", "/AlgoTasks/nofile")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"TaskInfo": {}}, "TaskID"),
        ({"TaskID": "x"}, "TaskInfo"),
        ({"TaskID": "x", "TaskInfo": {"RulesParams": []}}, "TaskInfo.StreamOptions"),
        (
            {
                "TaskID": "x",
                "TaskInfo": {"RulesParams": [], "StreamOptions": {"VideoStreamOptions": {}}},
            },
            "TaskInfo.StreamOptions.VideoStreamOptions.Url",
        ),
        (
            {
                "TaskID": "x",
                "TaskInfo": {
                    "RulesParams": [],
                    "StreamOptions": {"VideoStreamOptions": {"Url": "gopher://x/"}},
                },
            },
            "TaskInfo.StreamOptions.VideoStreamOptions.Url",
        ),
        (
            {
                "TaskID": "x",
                "TaskInfo": {"StreamOptions": {"VideoStreamOptions": {"Url": "rtsp://h/"}}},
            },
            "TaskInfo.RulesParams",
        ),
    ],
)
def test_a_bad_body_is_400_naming_the_field(engine: EngineProcess, body: dict, field: str) -> None:
    status, env = engine.call("POST", "/AlgoTasks", body)
    assert status == 400 and env["Code"] == 40000
    assert env["Message"].startswith(f"{field}: ")
    assert env["Data"]["Errors"][0]["Field"] == field


def test_bad_rule_fields_are_named(engine: EngineProcess) -> None:
    body = task_body("bad", "rtsp://127.0.0.1/x", area=(0, 0, 1.5, 1))
    status, env = engine.call("POST", "/AlgoTasks", body)
    assert status == 400
    assert env["Message"].startswith("TaskInfo.RulesParams[0].Areas[0].Points[1].PointX: ")
    body = task_body("bad", "rtsp://127.0.0.1/x", duration=-1)
    status, env = engine.call("POST", "/AlgoTasks", body)
    assert status == 400
    assert "ExtendParams.DurationThreshold" in env["Message"]
    body = task_body("bad", "rtsp://127.0.0.1/x", sensitivity="extreme")
    status, env = engine.call("POST", "/AlgoTasks", body)
    assert status == 400
    assert "ExtendParams.Sensitivity" in env["Message"]
    status, env = engine.call("POST", "/AlgoTasks", raw=b"{not json")
    assert (status, env["Code"]) == (400, 40001)
    status, env = engine.call("GET", "/Nowhere")
    assert (status, env["Code"]) == (404, 40401)


def test_the_standards_example_body_is_accepted_and_ids_are_unique(
    engine: EngineProcess,
) -> None:
    import json

    example = json.loads(
        (ROOT / "tests/contract/examples/D.1-K.1-d-AlgoTaskCreateRequest.json").read_text()
    )
    url = f"rtsp://127.0.0.1:{closed_port()}/?deviceID=101234200200000046&mode=video"
    example["TaskInfo"]["StreamOptions"]["VideoStreamOptions"]["Url"] = url
    body = {"TaskID": "example", "TaskInfo": example["TaskInfo"]}
    created = engine.ok("POST", "/AlgoTasks", body)
    assert created["TaskInfo"]["RulesParams"][0]["ExtendParams"]["Sensitivity"] == "低"
    status, env = engine.call("POST", "/AlgoTasks", body)
    assert (status, env["Code"]) == (409, 40900)
    engine.ok("DELETE", "/AlgoTasks/example")


def test_failed_deliveries_are_retried(
    engine: EngineProcess, receiver: Receiver, media: Path
) -> None:
    receiver.fail_next = 2
    engine.ok("POST", "/AlgoTasks", task_body("retry", str(media / "vtest_8s.mp4"), repeat=600))
    engine.wait_for("retry", finished)
    deadline = time.monotonic() + 10
    while not receiver.for_task("retry") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(receiver.for_task("retry")) == 1
    assert receiver.fail_next == 0
    health = engine.ok("GET", "/Health")
    assert health["Delivery"]["Failed"] == 0
    engine.ok("DELETE", "/AlgoTasks/retry")


def test_capacity_exceeded_is_a_503_envelope(tmp_path: Path) -> None:
    eng = start_engine(tmp_path / "engine.log", ENGINE_CAPACITY="1")
    try:
        url = f"rtsp://127.0.0.1:{closed_port()}/x"
        eng.ok("POST", "/AlgoTasks", task_body("one", url))
        status, env = eng.call("POST", "/AlgoTasks", task_body("two", url))
        assert (status, env["Code"]) == (503, 50300)
        assert "capacity" in env["Message"]
        assert eng.ok("GET", "/Health")["Tasks"] == 1
        eng.ok("DELETE", "/AlgoTasks/one")
        eng.ok("POST", "/AlgoTasks", task_body("two", url))
    finally:
        assert eng.stop() == 0


def test_sigterm_stops_running_tasks_and_exits_zero_promptly(tmp_path: Path, media: Path) -> None:
    eng = start_engine(tmp_path / "engine.log", ENGINE_FILE_SPEED="1")
    eng.ok("POST", "/AlgoTasks", task_body("live-ish", str(media / "vtest.avi"), repeat=1))
    url = f"rtsp://127.0.0.1:{closed_port()}/x"
    eng.ok("POST", "/AlgoTasks", task_body("retrying", url))
    eng.wait_for("live-ish", lambda d: d["Status"] == "RUNNING")
    started = time.monotonic()
    assert eng.stop() == 0
    assert time.monotonic() - started < 5


def test_the_engine_runs_from_a_copy_without_django(tmp_path: Path) -> None:
    """It ships inside an algorithm package: relative imports only, no Django."""
    shutil.copytree(
        ROOT / "algorithms/reference/engine",
        tmp_path / "engine",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    check = subprocess.run(
        [sys.executable, "-c", "import sys, engine.server; print('django' in sys.modules)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == "False"
    eng = start_engine(tmp_path / "engine.log", cwd=tmp_path, module="engine")
    try:
        assert eng.ok("GET", "/Health")["Status"] == "READY"
    finally:
        assert eng.stop() == 0


def test_a_file_served_over_http_is_decoded_to_its_end(engine: EngineProcess, media: Path) -> None:
    from tests.support.http_server import FileServer

    server = FileServer(media)
    server.start()
    try:
        engine.ok("POST", "/AlgoTasks", task_body("http", server.url("vtest_8s.mp4"), repeat=600))
        done = engine.wait_for("http", finished)
        assert done["Status"] == "FINISHED", done
        assert done["Live"] is False  # HTTP with a known duration is a file
        assert done["Stats"]["FramesDecoded"] == 80
        assert done["Stats"]["Events"] == 1
        engine.ok("DELETE", "/AlgoTasks/http")
    finally:
        server.stop()


def test_a_live_http_stream_that_drops_is_reconnected(engine: EngineProcess, media: Path) -> None:
    """An HTTP MPEG-TS stream with no length is live; when the server closes
    it, the engine reports why and reconnects, and frames flow again."""
    import io
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import av

    buf = io.BytesIO()
    with av.open(str(media / "vtest_8s.mp4")) as inp, av.open(buf, "w", format="mpegts") as out:
        src = inp.streams.video[0]
        dst = out.add_stream_from_template(src)
        for packet in inp.demux(src):
            if packet.dts is not None:
                packet.stream = dst
                out.mux(packet)
    data = buf.getvalue()
    served = []

    class Live(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            served.append(time.monotonic())
            self.send_response(200)
            self.send_header("Content-Type", "video/mp2t")
            self.end_headers()
            for i in range(0, len(data), 65536):
                self.wfile.write(data[i : i + 65536])
                time.sleep(0.05)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Live)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/live.ts"
        engine.ok("POST", "/AlgoTasks", task_body("live", url, event_id=None))
        d = engine.wait_for(
            "live",
            lambda d: d["Stats"]["Reconnects"] >= 1 and d["Stats"]["FramesDecoded"] > 100,
            timeout=30,
        )
        assert d["Live"] is True
        assert len(served) >= 2
        engine.ok("DELETE", "/AlgoTasks/live")
    finally:
        server.shutdown()
        server.server_close()
