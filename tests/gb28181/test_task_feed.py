"""gb28181:// task streams reach engines (issue 7), real parts only: the SIP
platform and its relay run in this process as `manage.py run_gb28181` runs
them (a thread polling SIP, a thread serving HTTP); the simulated camera
registers over loopback UDP and streams the vtest clip as RTP/PS in real time;
the reference engine (PyAV + OpenCV) runs as a `local` replica and opens the
relay's URL; tasks are created, paused and deleted through the REST API.

The test drives the facility's background passes (tasks.jobs.reconcile_tasks)
itself, as `manage.py run_loops` would."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import av
import pytest
from django.db import connection

from algorithms.reference.engine.config import EngineConfig
from algorithms.reference.engine.rules import parse_task_info
from algorithms.reference.engine.source import open_source
from compute.actions import ensure_local_node
from gb28181 import relay as gb_relay
from gb28181.models import Channel, Device
from gb28181.relay import Relay
from gb28181.sip import SipServer
from tasks import jobs, streams
from tasks.models import AlgoTask
from tests.gb28181.simulator import CLIP, DeviceSimulator
from tests.support.engines import (
    REFERENCE_NAME,
    REFERENCE_VERSION,
    reference_package,
    stop_all_replicas,
)
from tests.support.examples import example

DEVICE = "34020000001320000001"
GATE = "34020000001310000001"
NAME, VERSION = REFERENCE_NAME, REFERENCE_VERSION
needs_clip = pytest.mark.skipif(not CLIP.exists(), reason="run scripts/fetch-test-media.sh")


# --- the URL the engine gets (no network) --------------------------------------


def task_info(url: str) -> dict[str, Any]:
    info: dict[str, Any] = example("D.1-K.1-d")["TaskInfo"]
    info["StreamOptions"]["VideoStreamOptions"]["Url"] = url
    return info


def test_engine_gets_the_relay_url_and_the_stored_task_keeps_gb28181(settings: Any) -> None:
    settings.GB28181_RELAY_HOST, settings.GB28181_RELAY_PORT = "127.0.0.1", 15999
    stored = task_info(f"gb28181://{DEVICE}/{GATE}")
    sent = streams.engine_task_info(stored)
    assert sent["StreamOptions"]["VideoStreamOptions"]["Url"] == (
        f"http://127.0.0.1:15999/gb28181/{DEVICE}/{GATE}"
    )
    assert stored["StreamOptions"]["VideoStreamOptions"]["Url"] == f"gb28181://{DEVICE}/{GATE}"
    assert sent["RulesParams"] == stored["RulesParams"]
    tcp = streams.engine_task_info(task_info(f"GB28181://{DEVICE}/{GATE}?transport=tcp"))
    assert tcp["StreamOptions"]["VideoStreamOptions"]["Url"].endswith("?transport=tcp")
    # the reference engine takes the rewritten URL (it refuses gb28181://)
    assert parse_task_info(sent).url.startswith("http://127.0.0.1:15999/")
    for other in ("rtsp://127.0.0.1:8554/cam", "http://127.0.0.1/x.mp4"):
        assert streams.engine_task_info(task_info(other)) == task_info(other)


def test_media_gateway_rtsp_url_is_an_ordinary_rtsp_url(api: Any) -> None:
    """The standard's example form (a media gateway such as wvp-GB28181-pro)
    is accepted as it is and reaches the camera-facing server unchanged."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    url = f"rtsp://127.0.0.1:{port}/?deviceID={GATE}&mode=video"
    body = example("D.1-K.1-d")
    body["TaskInfo"]["Labels"] = {"AlgoCaBinName": "nothing-installed", "Version": "1"}
    body["TaskInfo"]["StreamOptions"]["VideoStreamOptions"]["Url"] = url
    response = api.post("/CAP/AlgoTasks", body)
    assert response.status_code == 200, response.body
    task = AlgoTask.objects.get(pk=response.body["Data"]["TaskInfo"]["ID"])
    assert task.stream_url == url
    assert streams.engine_task_info(task.task_info) == task.task_info
    assert streams.explain(url, "stream unreachable: timed out") == "stream unreachable: timed out"

    # the reference engine asks the gateway for exactly that URL
    requests: list[bytes] = []

    def answer_once() -> None:
        conn, _ = listener.accept()
        with conn:
            requests.append(conn.recv(4096))
            conn.sendall(b"RTSP/1.0 404 Not Found\r\nCSeq: 1\r\n\r\n")

    thread = threading.Thread(target=answer_once, daemon=True)
    thread.start()
    with pytest.raises(av.error.FFmpegError):
        open_source(url, EngineConfig(open_timeout_s=5, read_timeout_s=5))
    thread.join(5)
    listener.close()
    assert requests and f"/?deviceID={GATE}&mode=video RTSP/1.0".encode() in requests[0]


def test_problems_are_said_in_gb28181_terms() -> None:
    url = f"gb28181://{DEVICE}/{GATE}"
    assert gb_relay.explain(url, "") == ""
    # through the registry the tasks app uses: the gb28181 app registered its source
    assert "has never registered" in streams.explain(url, "stream unreachable: x")
    device = Device.objects.create(device_id=DEVICE, online=False)
    assert f"device {DEVICE} is offline" in gb_relay.explain(url, "x")
    Device.objects.filter(pk=device.pk).update(online=True)
    assert gb_relay.explain(url, "x") == "x"  # nothing known against it: the engine's words
    Channel.objects.create(device=device, channel_id="34020000001310000002")
    assert "lists no channel" in gb_relay.explain(url, "x")
    assert "20-digit" in gb_relay.explain("gb28181://123/456", "x")


# --- the platform and its relay, live --------------------------------------------


class Platform:
    """SipServer + Relay, served from threads like `manage.py run_gb28181`."""

    def __init__(self) -> None:
        self.sip = SipServer("127.0.0.1", 0)
        self.relay = Relay(self.sip, "127.0.0.1", 0)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        try:
            self.sip.serve_forever(self.stop, sweep_every_s=0.5)
        finally:
            connection.close()  # this thread's, so the test database can be dropped

    def start(self) -> None:
        self.relay.start()
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.relay.close()
        self.sip.close()


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result or time.monotonic() > deadline:
            assert result, f"timed out waiting for {what}"
            return result
        time.sleep(0.1)


@pytest.fixture
def platform(settings: Any) -> Iterator[Platform]:
    settings.GB28181_SIP_ID = "34020000002000000001"
    settings.GB28181_REALM = "3402000000"
    settings.GB28181_PASSWORD = "12345678"
    settings.GB28181_KEEPALIVE_TIMEOUT_S = 180
    settings.GB28181_MEDIA_HOST = ""
    server = Platform()
    settings.GB28181_RELAY_HOST, settings.GB28181_RELAY_PORT = "127.0.0.1", server.relay.port
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def camera(platform: Platform) -> Iterator[DeviceSimulator]:
    sim = DeviceSimulator(("127.0.0.1", platform.sip.port), live=True)
    try:
        assert sim.register().result(10) == 200
        wait_for(
            lambda: Channel.objects.filter(device__device_id=DEVICE).count() == 2, 10, "Catalog"
        )
        yield sim
    finally:
        sim.close()


def byes(camera: DeviceSimulator) -> int:
    return camera.byes


def decode(url: str, frames: int, timeout: float = 30) -> tuple[int, tuple[int, int]]:
    """Open the relay URL as the engine does (no format hint) and decode."""
    seen, size = 0, (0, 0)
    with av.open(url, options={"rw_timeout": "10000000"}, timeout=(timeout, 10)) as container:
        assert container.format.name == "mpeg", container.format.name
        deadline = time.monotonic() + timeout
        for frame in container.decode(video=0):
            seen += 1
            size = (frame.width, frame.height)
            if seen >= frames or time.monotonic() > deadline:
                break
    return seen, size


@needs_clip
@pytest.mark.django_db(transaction=True)
def test_relay_invites_once_for_two_readers_and_byes_after_the_last(
    platform: Platform, camera: DeviceSimulator
) -> None:
    url = gb_relay.relay_url(DEVICE, GATE)
    results: list[tuple[int, tuple[int, int]]] = []

    first = threading.Thread(target=lambda: results.append(decode(url, 40)), daemon=True)
    first.start()
    wait_for(lambda: camera.streams, 10, "the INVITE")
    time.sleep(1.0)  # the second reader joins a running stream
    results.append(decode(url, 25))
    first.join(30)
    assert len(camera.invites) == 1, "the second reader must share the first INVITE"
    assert sorted(n for n, _ in results) == [25, 40]
    assert {size for _, size in results} == {(768, 576)}
    # both readers closed: the relay ends the dialog
    wait_for(lambda: byes(camera) == 1, 10, "BYE")
    assert platform.relay.feeds == {} and platform.sip.sessions == {}
    stream = next(iter(camera.streams.values()))
    wait_for(stream.done.is_set, 5, "the camera to stop streaming")

    # a new reader INVITEs again
    assert decode(url, 5)[0] == 5
    wait_for(lambda: byes(camera) == 2, 10, "the second BYE")
    assert len(camera.invites) == 2


@pytest.mark.django_db(transaction=True)
def test_relay_answers_404_for_a_device_that_is_not_online(platform: Platform) -> None:
    with pytest.raises(av.error.HTTPNotFoundError):
        av.open(gb_relay.relay_url(DEVICE, GATE), timeout=(5, 5))
    wait_for(lambda: platform.relay.feeds == {}, 5, "the failed feed to go")
    assert platform.relay.invites == 1 and platform.sip.sessions == {}


# --- tasks through the REST API, analysed by the reference engine ---------------------


class Facility:
    def __init__(self, api: Any, file_server: Any) -> None:
        self.api = api
        self.file_server = file_server

    def service(self) -> None:
        archive = reference_package(
            {
                "ENGINE_ANALYSIS_FPS": "2",
                "ENGINE_OPEN_TIMEOUT_S": "20",
                "ENGINE_READ_TIMEOUT_S": "5",
                "ENGINE_RECONNECT_MAX_S": "1",
            },
            capacity=4,
        )
        url = self.file_server.add("reference-gb.tar.gz", archive.data)
        response = self.api.post(
            "/CAP/AlgoFilePackages",
            {"AlgoFilePackageID": "reference-gb", "Url": url, "MD5": archive.md5},
        )
        assert response.status_code == 200, response.body
        response = self.api.post(
            "/CAP/AlgoServices",
            {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": "reference-gb"},
        )
        assert response.status_code == 200, response.body

    def create(self, url: str, restart_policy: str = "ALWAYS") -> str:
        body = example("D.1-K.1-d")
        info = body["TaskInfo"]
        info["Labels"] = {"AlgoCaBinName": NAME, "Version": VERSION}
        info["StreamOptions"]["VideoStreamOptions"]["Url"] = url
        info["RulesParams"][0]["ResultReceiveUrl"] = []
        body["RestartPolicy"] = restart_policy
        response = self.api.post("/CAP/AlgoTasks", body)
        assert response.status_code == 200, response.body
        return str(response.body["Data"]["TaskInfo"]["ID"])

    def call(self, method: str, path: str) -> Any:
        response = self.api.call(method, path)
        assert response.status_code == 200, response.body
        return response.body.get("Data") or {}

    def detail(self, task_id: str) -> dict[str, Any]:
        return dict(self.call("get", f"/CAP/AlgoTasks/{task_id}"))

    def frames(self, task_id: str) -> int:
        return int((self.detail(task_id).get("Stats") or {}).get("FramesDecoded") or 0)


def pump(until: Callable[[], Any], timeout_s: float) -> Any:
    """Run the reconcile pass until `until()` is truthy; returns it."""
    deadline = time.monotonic() + timeout_s
    while True:
        jobs.reconcile_tasks()
        result = until()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


@pytest.fixture
def facility(api: Any, file_server: Any, live_server: Any, settings: Any) -> Iterator[Facility]:
    settings.PUBLIC_URL = live_server.url
    settings.ENGINE_START_TIMEOUT_S = 30
    ensure_local_node()
    try:
        yield Facility(api, file_server)
    finally:
        stop_all_replicas()


@needs_clip
@pytest.mark.django_db(transaction=True)
def test_gb28181_tasks_are_analysed_share_one_invite_and_bye_when_stopped(
    facility: Facility, platform: Platform, camera: DeviceSimulator
) -> None:
    facility.service()
    url = f"gb28181://{DEVICE}/{GATE}"
    first = facility.create(url)
    assert facility.detail(first)["TaskInfo"]["StreamOptions"]["VideoStreamOptions"]["Url"] == url
    assert pump(lambda: facility.frames(first) > 20, 60), facility.detail(first)
    assert facility.detail(first)["Status"] == "RUNNING"
    assert len(camera.invites) == 1 and camera.byes == 0

    # a second task on the same channel joins the running dialog
    second = facility.create(url, "NEVER")
    assert pump(lambda: facility.frames(second) > 10, 60), facility.detail(second)
    assert len(camera.invites) == 1, "two tasks on one channel must share one INVITE"
    seen = facility.frames(first)
    assert pump(lambda: facility.frames(first) > seen + 5, 30), "the first task stalled"

    # pausing one leaves the other's stream alone; deleting the last ends the dialog
    facility.call("post", f"/CAP/AlgoTasks/{first}:pause")
    assert facility.detail(first)["Status"] == "PAUSED"
    time.sleep(2)
    assert camera.byes == 0
    seen = facility.frames(second)
    assert pump(lambda: facility.frames(second) > seen + 5, 30), "the second task stalled"
    facility.call("delete", f"/CAP/AlgoTasks/{second}")
    wait_for(lambda: camera.byes == 1, 15, "BYE after the last task stopped")
    assert platform.sip.sessions == {}

    # resuming INVITEs again and the task analyses again
    facility.call("post", f"/CAP/AlgoTasks/{first}:resume")
    assert pump(lambda: len(camera.invites) == 2 and facility.frames(first) > 10, 60), (
        facility.detail(first)
    )
    facility.call("delete", f"/CAP/AlgoTasks/{first}")
    wait_for(lambda: camera.byes == 2, 15, "BYE after delete")


@needs_clip
@pytest.mark.django_db(transaction=True)
def test_offline_device_leaves_always_pending_and_never_in_error_then_always_recovers(
    facility: Facility, platform: Platform
) -> None:
    facility.service()
    url = f"gb28181://{DEVICE}/{GATE}"
    always = facility.create(url, "ALWAYS")
    never = facility.create(url, "NEVER")

    def settled() -> bool:
        return (
            AlgoTask.objects.get(pk=always).status == "PENDING"
            and AlgoTask.objects.get(pk=never).status == "ERROR"
        )

    assert pump(settled, 40), (facility.detail(always), facility.detail(never))
    for task_id in (always, never):
        reason = facility.detail(task_id)["Reason"]
        assert f"GB/T 28181 device {DEVICE} has never registered" in reason, reason
    assert "reconnecting" in facility.detail(always)["Reason"]
    assert platform.relay.feeds == {}

    # the camera registers: the ALWAYS task's engine gets through and it runs
    camera = DeviceSimulator(("127.0.0.1", platform.sip.port), live=True)
    try:
        assert camera.register().result(10) == 200
        assert pump(lambda: facility.detail(always)["Status"] == "RUNNING", 60), facility.detail(
            always
        )
        assert pump(lambda: facility.frames(always) > 10, 30), facility.detail(always)
        assert facility.detail(never)["Status"] == "ERROR"  # NEVER stays stopped
        assert len(camera.invites) == 1
        facility.call("delete", f"/CAP/AlgoTasks/{always}")
        wait_for(lambda: camera.byes == 1, 15, "BYE after delete")
    finally:
        camera.close()
