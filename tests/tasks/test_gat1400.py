"""GA/T 1400 output: task events delivered to a view library (视图库) on
loopback (tests/support/viid_server.py), through the durable delivery loop
(tasks.jobs.deliver_due): digest registration, keepalive, objects by kind with
the snapshot, per-object failures retried, 401 expiry, dead letters."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import cv2
import numpy as np
import pytest

from tasks import jobs
from tasks.api.serializers import check_receive_url
from tasks.events import accept_event
from tasks.models import AlgoTask, Delivery, ViewLibrary
from tasks.sinks import sink_for
from tasks.sinks.gat1400 import SETTINGS_TARGET, Gat1400Sink, keep_alive, library_for
from tests.support.viid_server import ViewLibraryServer

DEVICE_ID = "11010000001190000001"
WIDTH, HEIGHT = 64, 48


@pytest.fixture(autouse=True)
def _fast(settings: Any) -> None:
    settings.RESULT_BACKOFF_BASE_S = 0.01
    settings.RESULT_BACKOFF_MAX_S = 0.01
    settings.GAT1400_URL = ""
    settings.GAT1400_DEVICE_ID = ""
    settings.GAT1400_KEEPALIVE_S = 60


@pytest.fixture
def global_viid(viid: ViewLibraryServer, settings: Any) -> ViewLibraryServer:
    settings.GAT1400_URL = viid.base_url
    settings.GAT1400_USERNAME = "facility"
    settings.GAT1400_PASSWORD = "s3cret"
    settings.GAT1400_DEVICE_ID = DEVICE_ID
    return viid


def jpeg() -> bytes:
    picture = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    cv2.rectangle(picture, (10, 5), (30, 40), (0, 255, 0), 2)
    ok, encoded = cv2.imencode(".jpg", picture)
    assert ok
    return encoded.tobytes()


def make_task(*urls: str) -> str:
    task = AlgoTask.objects.create(
        restart_policy="NEVER",
        task_info={"RulesParams": [{"EventID": "", "ResultReceiveUrl": list(urls)}]},
        stream_url="rtsp://127.0.0.1:8554/cam",
    )
    return task.task_id


def event(task_id: str, *types: str, snapshot: bool = True) -> str:
    key = uuid.uuid4().hex
    document: dict[str, Any] = {
        "EventKey": key,
        "TaskID": task_id,
        "EventID": "INTRUSION",
        "AreaID": "0",
        "EventTime": int(time.time() * 1000),
        "EngineID": "engine-1",
        "Objects": [
            {"Type": t, "Confidence": 0.9, "Box": {"X": 0.25, "Y": 0.1, "W": 0.5, "H": 0.8}}
            for t in types
        ],
        "Width": WIDTH,
        "Height": HEIGHT,
    }
    if snapshot:
        document["Snapshot"] = base64.b64encode(jpeg()).decode()
        document["SnapshotFormat"] = "jpeg"
    accept_event(document)
    return key


def drain(rounds: int = 50) -> None:
    for _ in range(rounds):
        if not Delivery.objects.filter(state="pending").exists():
            return
        jobs.deliver_due()
        time.sleep(0.02)


def test_registers_with_digest_authentication_and_keeps_alive(global_viid, settings):
    assert keep_alive() == 1
    assert global_viid.challenges == 1  # first Register without credentials: 401 challenge
    assert global_viid.registrations == 1
    assert DEVICE_ID in global_viid.registered
    row = ViewLibrary.objects.get(key="settings")
    assert row.registered and row.registered_at and row.device_id == DEVICE_ID

    assert keep_alive() == 1  # inside the interval: nothing sent
    assert global_viid.keepalives == 0
    settings.GAT1400_KEEPALIVE_S = 0.05
    time.sleep(0.06)
    assert keep_alive() == 1
    assert global_viid.keepalives == 1
    (post,) = global_viid.posts("/VIID/System/Keepalive")
    assert post["body"] == {"KeepaliveObject": {"DeviceID": DEVICE_ID}}
    assert post["headers"]["User-Identify"] == DEVICE_ID
    assert global_viid.errors == []


def test_a_wrong_password_is_not_registered(viid):
    sink = Gat1400Sink()
    result = sink.send(viid.viid_url(DEVICE_ID, password="wrong"), {"EventTime": 0}, "k" * 16)
    assert not result.ok
    assert "401" in result.error
    assert viid.registered == set()
    row = ViewLibrary.objects.get()
    assert not row.registered and "register: HTTP 401" in row.last_error
    assert "wrong" not in row.key and "wrong" not in row.base_url


def test_a_person_event_is_delivered_as_persons_with_the_snapshot(viid):
    task_id = make_task(viid.viid_url(DEVICE_ID))
    key = event(task_id, "person", "person")
    drain()
    delivery = Delivery.objects.get()
    assert delivery.state == "delivered", delivery.last_error
    assert delivery.event.event_key == key
    assert viid.errors == []
    (post,) = viid.posts("/VIID/Persons")
    assert post["headers"]["Content-Type"].startswith("application/VIID+JSON")
    assert post["headers"]["User-Identify"] == DEVICE_ID
    persons = post["body"]["PersonListObject"]["PersonObject"]
    assert len(persons) == 2
    first = persons[0]
    assert len(first["PersonID"]) == 48 and first["PersonID"][41:43] == "01"
    assert first["PersonID"].startswith(first["SourceID"])
    assert first["SourceID"].startswith(DEVICE_ID + "02")
    assert persons[0]["PersonID"] != persons[1]["PersonID"]
    assert (first["LeftTopX"], first["LeftTopY"], first["RightBtmX"], first["RightBtmY"]) == (
        16,
        5,
        48,
        43,
    )
    (sub,) = first["SubImageList"]["SubImageInfoObject"]
    assert sub["Type"] == "14" and sub["FileFormat"] == "Jpeg"
    assert (sub["Width"], sub["Height"]) == (WIDTH, HEIGHT)
    assert base64.b64decode(sub["Data"]) == jpeg()
    assert len(sub["ShotTime"]) == 14
    # registered first, with the digest challenge answered
    paths = [r["path"] for r in viid._server.requests]
    assert paths[:3] == ["/VIID/System/Register", "/VIID/System/Register", "/VIID/Persons"]


@pytest.mark.parametrize(
    ("types", "path", "id_field", "type_code"),
    [
        (("face",), "/VIID/Faces", "FaceID", "06"),
        (("car",), "/VIID/MotorVehicles", "MotorVehicleID", "02"),
        (("vehicle",), "/VIID/MotorVehicles", "MotorVehicleID", "02"),
        (("smoke",), "/VIID/Images", "ImageID", "02"),
        ((), "/VIID/Images", "ImageID", "02"),
    ],
)
def test_each_kind_goes_to_its_endpoint(viid, types, path, id_field, type_code):
    task_id = make_task(viid.viid_url(DEVICE_ID))
    event(task_id, *types)
    drain()
    assert Delivery.objects.get().state == "delivered", Delivery.objects.get().last_error
    assert viid.errors == []
    (stored,) = viid.objects(path)
    if path == "/VIID/Images":
        info = stored["ImageInfo"]
        assert len(info["ImageID"]) == 41 and info["ImageID"][20:22] == "02"
        assert info["Title"] == "INTRUSION"
        assert base64.b64decode(stored["Data"]) == jpeg()
    else:
        assert len(stored[id_field]) == 48 and stored[id_field][41:43] == type_code
        assert stored["SubImageList"]["SubImageInfoObject"][0]["Data"]
    sent = {r["path"] for r in viid._server.requests} - {"/VIID/System/Register"}
    assert sent == {path}


def test_a_mixed_event_goes_to_every_endpoint_it_needs(viid):
    task_id = make_task(viid.viid_url(DEVICE_ID))
    event(task_id, "person", "face", "truck", "dog")
    drain()
    assert Delivery.objects.get().state == "delivered"
    assert viid.errors == []
    for path in ("/VIID/Persons", "/VIID/Faces", "/VIID/MotorVehicles", "/VIID/Images"):
        assert len(viid.objects(path)) == 1, path


def test_a_refused_object_fails_the_delivery_and_the_loop_retries_it(viid):
    task_id = make_task(viid.viid_url(DEVICE_ID))
    viid.fail_objects(1, code=3)  # 3 Device Error, for the first object only
    event(task_id, "person", "person")
    jobs.deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.state == "pending" and delivery.attempts == 1
    assert "StatusCode 3" in delivery.last_error
    assert len(viid.objects("/VIID/Persons")) == 1  # the other object was accepted

    drain()
    delivery.refresh_from_db()
    assert delivery.state == "delivered" and delivery.attempts == 2
    posts = viid.posts("/VIID/Persons")
    assert len(posts) == 2
    ids = [
        [p["PersonID"] for p in post["body"]["PersonListObject"]["PersonObject"]] for post in posts
    ]
    assert ids[0] == ids[1]  # the retry carries the same IDs: the view library can drop repeats
    assert viid.errors == []


def test_an_expired_registration_is_renewed_and_the_event_delivered(viid):
    task_id = make_task(viid.viid_url(DEVICE_ID))
    event(task_id, "face")
    drain()
    assert viid.registrations == 1
    viid.expire()
    event(task_id, "face")
    drain()
    assert Delivery.objects.filter(state="delivered").count() == 2
    assert Delivery.objects.filter(attempts=1).count() == 2  # both at their first attempt
    assert viid.registrations == 2
    assert viid.unauthorized == 1
    assert len(viid.objects("/VIID/Faces")) == 2
    assert viid.errors == []


def test_a_failed_keepalive_registers_again(global_viid, settings):
    assert keep_alive() == 1
    global_viid.expire()
    settings.GAT1400_KEEPALIVE_S = 0.01
    time.sleep(0.02)
    assert keep_alive() == 1
    assert global_viid.registrations == 2
    assert ViewLibrary.objects.get().registered


def test_undeliverable_objects_become_a_dead_letter(viid, settings):
    settings.RESULT_MAX_ATTEMPTS = 3
    task_id = make_task(viid.viid_url(DEVICE_ID))
    viid.fail_objects(10**6, code=1)
    event(task_id, "person")
    deadline = time.monotonic() + 5
    while not Delivery.objects.filter(state="dead").exists():
        assert time.monotonic() < deadline
        jobs.deliver_due()
        time.sleep(0.02)
    dead = Delivery.objects.get()
    assert dead.attempts == 3
    assert "StatusCode 1" in dead.last_error
    assert len(viid.posts("/VIID/Persons")) == 3


def test_the_view_library_of_the_settings_gets_every_tasks_events(global_viid):
    task_id = make_task("http://127.0.0.1:9/none")
    event(task_id, "person")
    targets = sorted(Delivery.objects.values_list("target", flat=True))
    assert targets == ["http://127.0.0.1:9/none", SETTINGS_TARGET]
    jobs.deliver_due()
    assert Delivery.objects.get(target=SETTINGS_TARGET).state == "delivered"
    assert len(global_viid.objects("/VIID/Persons")) == 1
    assert global_viid.errors == []


def test_an_unreachable_view_library_is_retried(viid, settings):
    url = viid.viid_url(DEVICE_ID)
    viid.close()
    task_id = make_task(url)
    event(task_id, "person")
    jobs.deliver_due()
    delivery = Delivery.objects.get()
    assert delivery.state == "pending" and delivery.attempts == 1
    assert "ConnectionError" in delivery.last_error


def test_receive_url_forms():
    assert isinstance(sink_for("viid://u:p@h:1/?DeviceID=" + DEVICE_ID), Gat1400Sink)
    assert isinstance(sink_for(SETTINGS_TARGET), Gat1400Sink)
    assert not isinstance(sink_for("http://h/x"), Gat1400Sink)
    check_receive_url(f"viid://user:pa%40ss@10.0.0.1:8080/?DeviceID={DEVICE_ID}")
    check_receive_url(f"viids://user:pass@viid.example/?DeviceID={DEVICE_ID}")
    library = library_for(f"viid://user:pa%40ss@10.0.0.1:8080/base/?DeviceID={DEVICE_ID}")
    assert library.base_url == "http://10.0.0.1:8080/base"
    assert library.password == "pa@ss"
    assert "pa@ss" not in library.key
    from rest_framework.exceptions import ValidationError

    for bad in ("viid://u:p@h:1/?DeviceID=123", "viid:///?DeviceID=" + DEVICE_ID, "ftp://x/"):
        with pytest.raises(ValidationError):
            check_receive_url(bad)


def test_the_task_api_checks_a_view_library_url(api):
    from tests.support.examples import example

    body = example("D.1-K.1-d")
    rule = body["TaskInfo"]["RulesParams"][0]
    rule["ResultReceiveUrl"] = ["viid://u:p@127.0.0.1:1/?DeviceID=42"]
    response = api.post("/CAP/AlgoTasks", body)
    assert response.status_code == 400, response.body
    assert "ResultReceiveUrl" in str(response.body) and "DeviceID" in str(response.body)


def test_a_due_keepalive_goes_before_the_next_delivery(viid, settings):
    task_id = make_task(viid.viid_url(DEVICE_ID))
    event(task_id, "face")
    drain()
    settings.GAT1400_KEEPALIVE_S = 0.01
    time.sleep(0.02)
    event(task_id, "face")
    drain()
    paths = [r["path"] for r in viid._server.requests]
    assert paths[-2:] == ["/VIID/System/Keepalive", "/VIID/Faces"]
    assert ViewLibrary.objects.get().keepalive_at is not None
    assert viid.errors == []


def test_engine_attributes_pass_through_without_touching_the_ids(viid):
    task_id = make_task(viid.viid_url(DEVICE_ID))
    key = uuid.uuid4().hex
    accept_event(
        {
            "EventKey": key,
            "TaskID": task_id,
            "EventID": "PARKING",
            "EventTime": int(time.time() * 1000),
            "Objects": [
                {
                    "Type": "car",
                    "Box": {"X": 0.1, "Y": 0.1, "W": "wide", "H": 0.2},
                    "PlateNo": "京A12345",
                    "PlateColor": "2",
                    "DeviceID": "99999999999999999999",
                    "Nested": {"ignored": True},
                }
            ],
            "Width": WIDTH,
            "Height": HEIGHT,
            "Snapshot": base64.b64encode(jpeg()).decode(),
        }
    )
    drain()
    assert Delivery.objects.get().state == "delivered"
    assert viid.errors == []
    (vehicle,) = viid.objects("/VIID/MotorVehicles")
    assert (vehicle["PlateNo"], vehicle["HasPlate"], vehicle["PlateColor"]) == (
        "京A12345",
        "1",
        "2",
    )
    assert vehicle["DeviceID"] == DEVICE_ID
    assert "Nested" not in vehicle


def test_view_libraries_obey_the_network_policy():
    target = f"viid://u:p@169.254.169.254:80/?DeviceID={DEVICE_ID}"
    result = Gat1400Sink().send(target, {"EventTime": 0}, "k" * 16)
    assert result.ok is False and result.status is None
    assert "denied network 169.254.0.0/16" in result.error
    assert not ViewLibrary.objects.get().registered
