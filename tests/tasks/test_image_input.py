"""GA/T 1400 image input (docs/gat1400.md "Image input"): pictures pushed to
the facility's `/VIID/Images` (or `/VIID/SubscribeNotifications`) with digest
authentication are stored, analysed by a real reference engine replica (the
package built by `build_reference_package`, run by the local runtime) through
`POST /Images:analyze`, and their events delivered through the durable
delivery loop to an HTTP receiver and to a GA/T 1400 view library on loopback
(tests/support/viid_server.py). The pictures are frames of the vtest footage
(people) and a flat picture (nobody)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import requests
from requests.auth import HTTPDigestAuth

from services.choices import ReplicaState
from services.models import AlgoService, Replica
from tasks import images, jobs
from tasks.choices import ImageJobState
from tasks.models import Delivery, ImageIntake, ImageJob, TaskEvent
from tests.reference.conftest import build_reference_package, media_folder
from tests.services.test_reference_services import push
from tests.support.engines import stop_all_replicas

RUN = uuid.uuid4().hex[:8]
FACILITY_ID = "11010000001190000001"  # the facility towards the view library it delivers to
CAMERA = "33010000001190000009"  # the device whose pictures the view library pushes
USER, PASSWORD = "viid-push", "pa:ss wörd"
VIID_HEADERS = {"Content-Type": "application/VIID+JSON;charset=UTF-8", "User-Identify": CAMERA}


@pytest.fixture(autouse=True)
def _settings(settings: Any) -> None:
    settings.VIID_INTAKE_USERNAME = USER
    settings.VIID_INTAKE_PASSWORD = PASSWORD
    settings.RESULT_BACKOFF_BASE_S = 0.01
    settings.RESULT_BACKOFF_MAX_S = 0.01
    settings.GAT1400_URL = ""
    settings.GAT1400_DEVICE_ID = ""
    # replicas post video events to the facility: none here (a closed port)
    settings.PUBLIC_URL = "http://127.0.0.1:9"
    low = 24000 + int(RUN, 16) % 300 * 100  # engine ports of this run's own
    settings.ENGINE_PORT_RANGE = f"{low}-{low + 99}"


@pytest.fixture(scope="session")
def people_jpeg() -> bytes:
    """Frame 250 of vtest.avi: five pedestrians in a car park (768x576)."""
    capture = cv2.VideoCapture(str(media_folder() / "vtest.avi"))
    try:
        capture.set(cv2.CAP_PROP_POS_FRAMES, 250)
        ok, frame = capture.read()
    finally:
        capture.release()
    assert ok, "vtest.avi: no frame 250"
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="session")
def empty_jpeg() -> bytes:
    """Nobody: a smooth grey gradient of the footage's size."""
    ramp = np.tile(np.linspace(60, 200, 768, dtype=np.uint8), (576, 1))
    ok, encoded = cv2.imencode(".jpg", cv2.merge([ramp, ramp, ramp]))
    assert ok
    return encoded.tobytes()


@pytest.fixture(scope="session")
def packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """The reference package with image capacity (Analyze_Quota 1) and without."""
    out = tmp_path_factory.mktemp("reference-images")
    return {
        "images": build_reference_package(out, "ref-images", "--images", "1"),
        "no-images": build_reference_package(out, "ref-no-images", "--images", "0"),
    }


def start_service(api: Any, file_server: Any, packages: dict, kind: str) -> AlgoService:
    from compute.actions import ensure_local_node

    ensure_local_node()
    package_id = f"ref-{kind}-{uuid.uuid4().hex[:6]}"
    push(api, file_server, packages[kind], package_id)
    response = api.post(
        "/CAP/AlgoServices", {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": package_id}
    )
    assert response.status_code == 200, response.body
    service = AlgoService.objects.get(pk=response.body["Data"]["AlgoServiceID"])
    assert service.status == "RUNNING", service.status_reason
    return service


def intake(*receive_urls: str, **fields: Any) -> ImageIntake:
    rule = {"EventID": "PERSON_IN_AREA", "ResultReceiveUrl": list(receive_urls)}
    return ImageIntake.objects.create(
        name="people", algo_name="reference-people", rules=[rule], **fields
    )


def image_id(sequence: int) -> str:
    """41 digits: DeviceID + 02 + shot time + sequence (GA/T 1400.1)."""
    return f"{CAMERA}0220261128120000{sequence:05d}"


def image(picture: bytes, sequence: int) -> dict[str, Any]:
    return {
        "ImageInfo": {
            "ImageID": image_id(sequence),
            "InfoKind": 1,
            "ImageSource": "99",
            "EventSort": 99,
            "DeviceID": CAMERA,
            "FileFormat": "Jpeg",
            "ShotTime": "20261128120000",
            "Width": 768,
            "Height": 576,
        },
        "Data": base64.b64encode(picture).decode(),
    }


def push_images(
    url: str, *items: dict[str, Any], auth: Any = None, path: str = "/VIID/Images"
) -> requests.Response:
    body = {"ImageListObject": {"Image": list(items)}}
    return requests.post(
        f"{url}{path}",
        data=json.dumps(body).encode(),
        headers=VIID_HEADERS,
        auth=HTTPDigestAuth(USER, PASSWORD) if auth is None else auth,
        timeout=60,
    )


def statuses(response: requests.Response) -> list[dict[str, Any]]:
    assert response.headers["Content-Type"].startswith("application/VIID+JSON")
    return response.json()["ResponseStatusListObject"]["ResponseStatusObject"]


def drain(rounds: int = 100) -> None:
    for _ in range(rounds):
        if not Delivery.objects.filter(state="pending").exists():
            return
        jobs.deliver_due()
        time.sleep(0.02)


def test_a_pushed_picture_is_analysed_and_its_persons_reach_the_view_library(
    api, file_server, packages, live_server, people_jpeg, viid, receiver, settings
):
    service = start_service(api, file_server, packages, "images")
    replica = Replica.objects.get(service=service)
    intake(receiver.url, viid.viid_url(FACILITY_ID))

    response = push_images(live_server.url, image(people_jpeg, 1))
    assert response.status_code == 200, response.text
    (status,) = statuses(response)
    assert status["Id"] == image_id(1) and status["StatusCode"] == 0, status
    assert status["RequestURL"] == "/VIID/Images"

    # stored before it was acknowledged: the very bytes that were pushed
    job = ImageJob.objects.get(image_id=image_id(1))
    assert Path(job.path).read_bytes() == people_jpeg
    assert job.device_id == CAMERA and job.size == len(people_jpeg)
    assert job.info["ShotTime"] == "20261128120000" and "Data" not in job.info
    # the analysis queued on intake (run inline in the tests' queue mode) is done
    assert job.state == ImageJobState.DONE, job.reason
    assert job.state == ImageJobState.DONE, job.reason
    assert job.replica_id == replica.pk and job.slot is None
    assert job.objects_found >= 3, job.reason  # HOG finds most of the five people
    assert job.events == 1  # one rule, the whole frame as its area

    event = TaskEvent.objects.get()
    assert event.task_id == "image:people" and event.event_id == "PERSON_IN_AREA"
    assert event.service_id == service.service_id and event.snapshot_bytes > 0
    assert event.document["ImageID"] == image_id(1)
    assert event.document["SourceDeviceID"] == CAMERA
    drain()
    assert set(Delivery.objects.values_list("state", flat=True)) == {"delivered"}

    # the HTTP receiver: the event document with the snapshot (boxes drawn)
    (received,) = receiver.received
    document = received["body"]
    assert document["TaskID"] == "image:people" and document["ImageID"] == image_id(1)
    people = [o for o in document["Objects"] if o["Type"] == "person"]
    assert len(people) == job.objects_found
    snapshot = cv2.imdecode(
        np.frombuffer(base64.b64decode(document["Snapshot"]), np.uint8), cv2.IMREAD_COLOR
    )
    assert snapshot.shape[:2] == (576, 768)

    # the view library: one PersonObject per person, with the scene image
    viid.wait_for(lambda: len(viid.objects("/VIID/Persons")) == len(people))
    assert viid.errors == []
    persons = viid.objects("/VIID/Persons")
    for person in persons:
        (sub,) = person["SubImageList"]["SubImageInfoObject"]
        assert (sub["Width"], sub["Height"], sub["Type"]) == (768, 576, "14")
        assert person["RightBtmX"] > person["LeftTopX"] and person["DeviceID"] == FACILITY_ID

    # the same ImageID again: acknowledged, not analysed or delivered twice
    again = push_images(live_server.url, image(people_jpeg, 1))
    assert statuses(again)[0]["StatusCode"] == 0
    assert ImageJob.objects.count() == 1 and TaskEvent.objects.count() == 1


def test_digest_authentication_is_required(live_server, people_jpeg, settings):
    intake()
    anonymous = requests.post(
        f"{live_server.url}/VIID/Images",
        data=json.dumps({"ImageListObject": {"Image": [image(people_jpeg, 2)]}}),
        headers=VIID_HEADERS,
        timeout=10,
    )
    assert anonymous.status_code == 401
    challenge = anonymous.headers["WWW-Authenticate"]
    assert challenge.startswith("Digest ") and 'qop="auth"' in challenge
    assert anonymous.json()["ResponseStatusObject"]["StatusCode"] == 4

    wrong = push_images(live_server.url, image(people_jpeg, 2), auth=HTTPDigestAuth(USER, "nope"))
    assert wrong.status_code == 401
    stranger = push_images(
        live_server.url, image(people_jpeg, 2), auth=HTTPDigestAuth("someone", PASSWORD)
    )
    assert stranger.status_code == 401
    assert not ImageJob.objects.exists()

    settings.VIID_INTAKE_USERNAME = ""  # image input off
    off = push_images(live_server.url, image(people_jpeg, 2))
    assert off.status_code == 503
    assert not ImageJob.objects.exists()


def test_malformed_requests_name_the_field(live_server, people_jpeg):
    intake()
    auth = HTTPDigestAuth(USER, PASSWORD)
    url = f"{live_server.url}/VIID/Images"

    not_json = requests.post(url, data=b"{nope", headers=VIID_HEADERS, auth=auth, timeout=10)
    assert not_json.status_code == 400
    status = not_json.json()["ResponseStatusObject"]
    assert status["StatusCode"] == 7 and "not JSON" in status["StatusString"]

    wrong_shape = requests.post(
        url, data=json.dumps({"Images": []}), headers=VIID_HEADERS, auth=auth, timeout=10
    )
    assert wrong_shape.status_code == 400
    status = wrong_shape.json()["ResponseStatusObject"]
    assert status["StatusCode"] == 8 and status["StatusString"].startswith("ImageListObject")

    no_id = image(people_jpeg, 3)
    del no_id["ImageInfo"]["ImageID"]
    not_base64 = image(people_jpeg, 4)
    not_base64["Data"] = "***"
    not_a_picture = image(people_jpeg, 5)
    not_a_picture["Data"] = base64.b64encode(b"GIF89a" + bytes(64)).decode()
    no_data = image(people_jpeg, 6)
    del no_data["Data"]
    good = image(people_jpeg, 7)
    response = push_images(live_server.url, no_id, not_base64, not_a_picture, no_data, good)
    assert response.status_code == 200
    answers = statuses(response)
    assert [a["StatusCode"] for a in answers] == [8, 8, 8, 8, 0]
    texts = [a["StatusString"] for a in answers]
    assert texts[0] == "ImageListObject.Image[0].ImageInfo.ImageID: is required"
    assert texts[1] == "ImageListObject.Image[1].Data: must be base64"
    assert texts[2] == "ImageListObject.Image[2].Data: is not a JPEG or PNG image"
    assert texts[3].startswith("ImageListObject.Image[3].Data: is required")
    assert [a["Id"] for a in answers[1:]] == [image_id(n) for n in (4, 5, 6, 7)]
    # only the good picture was kept
    assert list(ImageJob.objects.values_list("image_id", flat=True)) == [image_id(7)]


def test_a_picture_with_nobody_raises_no_event_and_notifications_carry_images(
    api, file_server, packages, live_server, empty_jpeg, receiver
):
    start_service(api, file_server, packages, "images")
    intake(receiver.url)
    body = {
        "SubscribeNotificationListObject": {
            "SubscribeNotificationObject": [
                {
                    "NotificationID": "330100000011904202611281200000001",
                    "SubscribeID": "330100000011903202611281200000001",
                    "Title": "pictures",
                    "TriggerTime": "20261128120000",
                    "InfoIDs": image_id(8),
                    "ImageObjectList": {"ImageObject": [image(empty_jpeg, 8)]},
                },
                {
                    "NotificationID": "330100000011904202611281200000002",
                    "SubscribeID": "330100000011903202611281200000001",
                    "Title": "faces only",
                    "TriggerTime": "20261128120000",
                    "InfoIDs": "",
                    "FaceObjectList": {"FaceObject": []},
                },
            ]
        }
    }
    response = requests.post(
        f"{live_server.url}/VIID/SubscribeNotifications",
        data=json.dumps(body).encode(),
        headers=VIID_HEADERS,
        auth=HTTPDigestAuth(USER, PASSWORD),
        timeout=60,
    )
    assert response.status_code == 200, response.text
    first, second = statuses(response)
    assert first["Id"] == image_id(8) and first["StatusCode"] == 0
    assert second["Id"] == "330100000011904202611281200000002" and second["StatusCode"] == 0

    jobs.analyze_due_images()
    job = ImageJob.objects.get()
    assert job.source == "notification"
    assert job.state == ImageJobState.DONE, job.reason
    assert (job.objects_found, job.events) == (0, 0)
    assert not TaskEvent.objects.exists() and not Delivery.objects.exists()
    drain()
    assert receiver.received == []


def test_only_replicas_with_image_capacity_analyse_and_their_quota_holds(
    api, file_server, packages, live_server, people_jpeg, settings
):
    blind = start_service(api, file_server, packages, "no-images")
    intake()
    settings.FACILITY_QUEUE_MODE = "manual"  # this test runs the image loop itself
    response = push_images(live_server.url, image(people_jpeg, 9), image(people_jpeg, 10))
    settings.FACILITY_QUEUE_MODE = "sync"
    assert [s["StatusCode"] for s in statuses(response)] == [0, 0]
    jobs.analyze_due_images()
    first, second = ImageJob.objects.order_by("image_id")
    for job in (first, second):
        assert job.state == ImageJobState.PENDING and job.replica_id is None
    assert "declares image capacity (Analyze_Quota)" in first.reason, first.reason
    assert second.reason == "waiting for analysis"  # not tried again in the same pass
    # the service without image capacity was never asked
    assert images.candidate_services(first.intake) == []
    assert images.analyze_quota(blind) == 0

    able = start_service(api, file_server, packages, "images")  # Analyze_Quota 1
    replica = Replica.objects.get(service=able)
    assert images.analyze_quota(able) == 1
    # a worker is analysing the first picture on the replica's only slot...
    ImageJob.objects.filter(pk=first.pk).update(
        state=ImageJobState.RUNNING, replica=replica, slot=0, claimed_until=None
    )
    ImageJob.objects.filter(pk=second.pk).update(next_attempt_at=second.created_at)  # due now
    outcome = images.analyze_image(second.pk)
    second.refresh_from_db()
    assert outcome.kind == "busy" and second.state == ImageJobState.PENDING
    assert "waiting for a free image slot" in second.reason
    # ...and a claim that expires (the worker died) frees the slot again
    ImageJob.objects.filter(pk=first.pk).update(
        claimed_until=first.created_at, next_attempt_at=first.created_at
    )
    ImageJob.objects.filter(pk=second.pk).update(next_attempt_at=second.created_at)
    for _ in range(5):
        jobs.analyze_due_images()
        if not ImageJob.objects.exclude(state=ImageJobState.DONE).exists():
            break
    for job in ImageJob.objects.all():
        assert job.state == ImageJobState.DONE, job.reason
        assert job.replica_id == replica.pk
    assert TaskEvent.objects.filter(service_id=blind.service_id).count() == 0


def test_a_failing_engine_is_retried_then_the_picture_fails_and_can_be_queued_again(
    api, file_server, packages, live_server, people_jpeg, settings
):
    service = start_service(api, file_server, packages, "images")
    intake()
    stop_all_replicas()  # the process is gone; the facility has not noticed yet
    assert Replica.objects.get(service=service).state == ReplicaState.RUNNING
    settings.IMAGE_MAX_ATTEMPTS = 2
    settings.FACILITY_QUEUE_MODE = "manual"
    assert statuses(push_images(live_server.url, image(people_jpeg, 11)))[0]["StatusCode"] == 0
    settings.FACILITY_QUEUE_MODE = "sync"
    job = ImageJob.objects.get()

    assert images.analyze_image(job.pk).kind == "retry"
    job.refresh_from_db()
    assert job.state == ImageJobState.PENDING and job.attempts == 1 and job.slot is None
    assert "engine not answering" in job.reason and job.next_attempt_at > job.created_at
    ImageJob.objects.filter(pk=job.pk).update(next_attempt_at=job.created_at)
    assert images.analyze_image(job.pk).kind == "failed"
    job.refresh_from_db()
    assert job.state == ImageJobState.FAILED and job.attempts == 2 and job.finished_at
    assert Path(job.path).read_bytes() == people_jpeg  # kept for a later try
    assert not TaskEvent.objects.exists()

    assert images.retry([job.pk]) == 1  # the admin's "analyse again"
    job.refresh_from_db()
    assert (job.state, job.attempts, job.finished_at) == (ImageJobState.PENDING, 0, None)


def test_the_engine_refuses_images_beyond_its_quota_at_once():
    from algorithms.reference.engine.config import EngineConfig
    from algorithms.reference.engine.images import ImageAnalyzer
    from algorithms.reference.engine.server import ApiError, Engine

    engine = Engine(EngineConfig(port=0, engine_id="quota-test"))
    analyzer = ImageAnalyzer(engine, quota=1)
    picture = np.full((128, 96, 3), 127, np.uint8)
    body = {"ImageID": "q-1", "Data": base64.b64encode(cv2.imencode(".png", picture)[1]).decode()}
    assert analyzer.analyze(body)["Events"] == []
    held = analyzer._take()  # one analysis in progress
    assert held is not None
    with pytest.raises(ApiError) as refused:
        analyzer.analyze(body)
    assert (refused.value.http, refused.value.code) == (503, 50300)
    assert "1 of 1 image slots in use" in refused.value.message
    analyzer._give(held)
    assert analyzer.analyze(body)["ImageID"] == "q-1"
    engine.shutdown(join_s=0.1)


def test_the_operator_sets_up_an_intake_in_the_admin(admin_client):
    url = "/admin/tasks/imageintake/add/"
    assert admin_client.get(url).status_code == 200
    form = {
        "name": "gate",
        "enabled": "on",
        "device_ids": CAMERA,
        "algo_name": "reference-people",
        "algo_version": "",
        "service": "",
    }
    bad_area = [{"EventID": "X", "Areas": [{"AreaID": 1, "Points": [{"PointX": 0}]}]}]
    refused = admin_client.post(url, {**form, "rules": json.dumps(bad_area)})
    assert refused.status_code == 200 and not ImageIntake.objects.exists()
    assert "PointY" in refused.content.decode()
    bad_url = [{"EventID": "X", "ResultReceiveUrl": ["ftp://nowhere"]}]
    assert admin_client.post(url, {**form, "rules": json.dumps(bad_url)}).status_code == 200
    nameless = {**form, "algo_name": "", "rules": "[]"}
    assert admin_client.post(url, nameless).status_code == 200
    assert not ImageIntake.objects.exists()

    rules = [{"EventID": "PERSON_IN_AREA", "ResultReceiveUrl": ["http://127.0.0.1:9/x"]}]
    created = admin_client.post(url, {**form, "rules": json.dumps(rules)})
    assert created.status_code == 302, created.content.decode()[:2000]
    gate = ImageIntake.objects.get()
    assert gate.device_list() == [CAMERA] and gate.task_id == "image:gate"
    assert images.intake_for(CAMERA) == gate and images.intake_for("other") is None
    assert admin_client.get("/admin/tasks/imagejob/").status_code == 200
