"""The native GB/T 28181 route against the simulated camera on loopback: the
platform is polled in the test's thread (so its database writes share the
test's transaction), the camera runs in its own."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from gb28181 import devices
from gb28181.models import Channel, Device
from gb28181.sip import SipServer
from tests.gb28181.simulator import CLIP, DeviceSimulator

DEVICE = "34020000001320000001"


@pytest.fixture
def gb_settings(settings: Any) -> Any:
    settings.GB28181_SIP_ID = "34020000002000000001"
    settings.GB28181_REALM = "3402000000"
    settings.GB28181_PASSWORD = "12345678"
    settings.GB28181_KEEPALIVE_TIMEOUT_S = 180
    settings.GB28181_MEDIA_HOST = ""
    return settings


@pytest.fixture
def server(gb_settings: Any) -> Iterator[SipServer]:
    server = SipServer("127.0.0.1", 0)
    yield server
    server.close()


@pytest.fixture
def camera(server: SipServer) -> Iterator[DeviceSimulator]:
    sim = DeviceSimulator(("127.0.0.1", server.port))
    yield sim
    sim.close()


def wait(server: SipServer, predicate: Any, timeout: float = 5) -> None:
    assert server.serve_until(predicate, timeout), "timed out"


def register(server: SipServer, camera: DeviceSimulator, expires: int = 3600) -> int:
    future = camera.register(expires)
    wait(server, future.done)
    return future.result()


def test_register_catalog_keepalive_unregister(server: SipServer, camera: DeviceSimulator) -> None:
    assert register(server, camera) == 200
    # the first REGISTER was challenged, the second carried the digest
    statuses = [m.status for m in camera.received if m.cseq[1] == "REGISTER"]
    assert statuses == [401, 200]
    challenge = next(m for m in camera.received if m.status == 401).get("WWW-Authenticate")
    assert 'realm="3402000000"' in challenge and "nonce=" in challenge
    ok = next(m for m in camera.received if m.status == 200 and m.cseq[1] == "REGISTER")
    assert ok.get("Expires") == "3600" and ok.get("Date")

    device = Device.objects.get(device_id=DEVICE)
    assert device.online and device.host == "127.0.0.1" and device.port == camera.port
    assert device.registered_until is not None and device.transport == "UDP"

    # registration triggers a Catalog query, answered in two messages (SumNum 2)
    wait(server, lambda: Channel.objects.filter(device=device).count() == 2)
    gate, parking = Channel.objects.filter(device=device).order_by("channel_id")
    assert (gate.channel_id, gate.name, gate.status) == ("34020000001310000001", "大门", "ON")
    assert (parking.name, parking.status, parking.parent_id) == ("Parking lot", "OFF", DEVICE)
    assert gate.url == f"gb28181://{DEVICE}/34020000001310000001"
    wait(server, lambda: Device.objects.get(pk=device.pk).manufacturer == "TestCam")
    device.refresh_from_db()
    assert (device.name, device.model, device.firmware) == ("测试摄像机", "IPC-1", "V1.0")
    assert device.catalog_at is not None

    before = device.last_keepalive_at
    history_rows = device.history.count()
    time.sleep(0.01)
    reply = camera.keepalive()
    wait(server, reply.done)
    assert reply.result().status == 200
    device.refresh_from_db()
    assert device.last_keepalive_at > before
    assert device.history.count() == history_rows  # keepalives write no history

    assert register(server, camera, expires=0) == 200
    device.refresh_from_db()
    assert not device.online


def test_wrong_password_is_refused(server: SipServer, camera: DeviceSimulator) -> None:
    camera.password = "wrong"
    assert register(server, camera) == 403
    assert not Device.objects.filter(device_id=DEVICE, online=True).exists()


def test_no_password_configured_refuses_everyone(
    server: SipServer, camera: DeviceSimulator, gb_settings: Any
) -> None:
    gb_settings.GB28181_PASSWORD = ""
    assert register(server, camera) == 403


def test_keepalive_from_unregistered_device_is_404(
    server: SipServer, camera: DeviceSimulator
) -> None:
    reply = camera.keepalive()
    wait(server, reply.done)
    assert reply.result().status == 404


def test_offline_after_keepalive_timeout(
    server: SipServer, camera: DeviceSimulator, gb_settings: Any
) -> None:
    assert register(server, camera) == 200
    gb_settings.GB28181_KEEPALIVE_TIMEOUT_S = 0.3
    assert devices.sweep_offline() == 0
    reply = camera.keepalive()
    wait(server, reply.done)
    time.sleep(0.4)
    assert devices.sweep_offline() == 1
    device = Device.objects.get(device_id=DEVICE)
    assert not device.online
    assert device.history.first().history_change_reason == "keepalive timeout"
    # a keepalive within the registration brings it back
    reply = camera.keepalive()
    wait(server, reply.done)
    assert reply.result().status == 200
    assert Device.objects.get(device_id=DEVICE).online


@pytest.mark.skipif(not CLIP.exists(), reason="run scripts/fetch-test-media.sh")
@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_invite_receives_ps_frames_then_bye(
    server: SipServer, camera: DeviceSimulator, tcp: bool
) -> None:
    assert register(server, camera) == 200
    wait(server, lambda: Channel.objects.count() == 2)
    seen: list[Any] = []
    session = server.invite(DEVICE, "34020000001310000001", tcp=tcp, on_frame=seen.append)
    wait(server, lambda: session.state != "inviting")
    assert session.state == "playing", session.error
    assert "PS/90000" in session.answer
    stream = camera.streams[session.call_id]
    wait(server, stream.done.is_set, timeout=20)
    # a live stream has no end: BYE once most frames are through; the rest drain
    wait(server, lambda: session.receiver.frames >= 60, timeout=10)
    bye = server.bye(session)
    assert bye is not None
    wait(server, bye.done.is_set)
    assert bye.response is not None and bye.response.status == 200
    assert camera.byes == 1 and session.state == "ended"
    receiver = session.receiver
    assert receiver.packets == stream.sent_packets and receiver.reorder.lost == 0
    assert receiver.frames == len(seen) == 80, receiver.error
    assert (receiver.width, receiver.height) == (768, 576)


def test_invite_unknown_channel_fails(server: SipServer, camera: DeviceSimulator) -> None:
    assert register(server, camera) == 200
    session = server.invite(DEVICE, "34020000001310000009")
    wait(server, lambda: session.state != "inviting")
    assert session.state == "failed" and "488" in session.error


def test_admin_lists_devices_and_channels_read_only(
    server: SipServer, camera: DeviceSimulator, admin_client: Any
) -> None:
    assert register(server, camera) == 200
    wait(server, lambda: Channel.objects.count() == 2)
    device = Device.objects.get(device_id=DEVICE)
    page = admin_client.get("/admin/gb28181/device/")
    assert page.status_code == 200 and DEVICE in page.content.decode()
    page = admin_client.get("/admin/gb28181/channel/")
    assert page.status_code == 200 and "大门" in page.content.decode()
    assert admin_client.get(f"/admin/gb28181/device/{device.pk}/change/").status_code == 200
    assert admin_client.get(f"/admin/gb28181/device/{device.pk}/history/").status_code == 200
    assert admin_client.get("/admin/gb28181/device/add/").status_code == 403
