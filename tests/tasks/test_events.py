"""Results end to end on loopback: an engine process posts events to the
facility's intake (a live server), which stores them with their snapshot and
delivers them to a real receiver, at least once, signed, retried, and
dead-lettered with replay."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
import requests

from services.engine import engine_token
from services.models import AlgoService, Replica
from tasks import jobs
from tasks.events import replay
from tasks.models import Delivery, TaskEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def replica(engines, live_server, settings) -> Replica:
    settings.PUBLIC_URL = live_server.url
    engines.package()
    service_id = engines.create(Replicas=1)["Data"]["AlgoServiceID"]
    return AlgoService.objects.get(pk=service_id).replica_set.get()


def emit(replica: Replica, task_id: str, event_id: str = "ILLEGAL_ADV") -> int:
    response = requests.post(
        f"{replica.engine_url}/_emit/{task_id}", json={"EventID": event_id}, timeout=10
    )
    return response.json()["Data"]["SinkStatus"]


def drain(rounds: int = 20) -> None:
    for _ in range(rounds):
        if not jobs.deliver_due():
            return


def test_event_reaches_the_receiver_with_snapshot_key_and_signature(
    tasks, replica, receiver, settings
):
    settings.RESULT_HMAC_SECRET = "shared-secret"
    task_id = tasks.create(receive_url=receiver.url)["Data"]["TaskInfo"]["ID"]
    assert emit(replica, task_id) == 200

    event = TaskEvent.objects.get(task_id=task_id)
    assert event.snapshot_bytes > 100
    assert event.service_id == replica.service_id
    drain()
    (got,) = receiver.received
    body = got["body"]
    assert body["TaskID"] == task_id
    assert body["EventID"] == "ILLEGAL_ADV"
    assert body["AlgoServiceID"] == replica.service_id
    assert body["Snapshot"].startswith("/9j/")  # a JPEG
    assert got["headers"]["X-Event-Key"] == event.event_key
    timestamp = got["headers"]["X-Facility-Timestamp"]
    expected = hmac.new(b"shared-secret", timestamp.encode() + b"." + got["raw"], hashlib.sha256)
    assert got["headers"]["X-Facility-Signature"] == "sha256=" + expected.hexdigest()
    assert Delivery.objects.get().state == "delivered"


def test_receiver_down_then_back_gets_every_event_once(tasks, replica, receiver, settings):
    settings.RESULT_BACKOFF_BASE_S = 0.05
    settings.RESULT_BACKOFF_MAX_S = 0.2
    task_id = tasks.create(receive_url=receiver.url)["Data"]["TaskInfo"]["ID"]
    receiver.refuse(True)
    for _ in range(5):
        assert emit(replica, task_id) == 200
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        jobs.deliver_due()
        time.sleep(0.05)
    assert receiver.received == []
    assert receiver.attempts >= 2
    assert Delivery.objects.filter(state="pending").count() == 5

    receiver.refuse(False)
    deadline = time.monotonic() + 10
    while Delivery.objects.filter(state="pending").exists():
        assert time.monotonic() < deadline
        jobs.deliver_due()
        time.sleep(0.05)
    keys = [item["headers"]["X-Event-Key"] for item in receiver.received]
    assert len(keys) == 5 and len(set(keys)) == 5


def test_undeliverable_events_are_dead_lettered_and_replayed(tasks, replica, receiver, settings):
    settings.RESULT_BACKOFF_BASE_S = 0.01
    settings.RESULT_BACKOFF_MAX_S = 0.01
    settings.RESULT_MAX_ATTEMPTS = 3
    task_id = tasks.create(receive_url=receiver.url)["Data"]["TaskInfo"]["ID"]
    receiver.refuse(True)
    emit(replica, task_id)
    deadline = time.monotonic() + 5
    while not Delivery.objects.filter(state="dead").exists():
        assert time.monotonic() < deadline
        jobs.deliver_due()
        time.sleep(0.02)
    dead = Delivery.objects.get()
    assert dead.attempts == 3
    assert dead.last_error == "HTTP 503"

    receiver.refuse(False)
    assert replay(event_key=dead.event.event_key) == 1
    drain()
    assert Delivery.objects.get().state == "delivered"
    assert len(receiver.received) == 1


def test_a_repeated_event_key_is_stored_and_delivered_once(tasks, replica, receiver, live_server):
    task_id = tasks.create(receive_url=receiver.url)["Data"]["TaskInfo"]["ID"]
    document = {
        "EventKey": "k" * 32,
        "TaskID": task_id,
        "EventID": "ILLEGAL_ADV",
        "EventTime": int(time.time() * 1000),
        "EngineID": replica.name,
    }
    headers = {"Authorization": f"Bearer {engine_token(replica.name)}"}
    url = f"{live_server.url}/internal/engine-events"
    for _ in range(2):
        assert requests.post(url, json=document, headers=headers, timeout=5).status_code == 200
    assert TaskEvent.objects.count() == 1
    drain()
    assert len(receiver.received) == 1


def test_intake_refuses_an_engine_without_its_credential(replica, live_server):
    url = f"{live_server.url}/internal/engine-events"
    document = {"EventKey": "x" * 16, "TaskID": "t", "EventTime": 1, "EngineID": replica.name}
    response = requests.post(url, json=document, timeout=5)
    assert response.status_code == 401
    response = requests.post(
        url, json=document, headers={"Authorization": "Bearer wrong"}, timeout=5
    )
    assert response.status_code == 401
    assert not TaskEvent.objects.exists()


def test_events_only_go_to_the_receivers_of_the_matching_rule(tasks, replica, receiver):
    body = tasks.body(receive_url=receiver.url)
    second_rule = dict(body["TaskInfo"]["RulesParams"][0])
    second_rule["EventID"] = "OTHER_EVENT"
    second_rule["ResultReceiveUrl"] = ["http://127.0.0.1:9/elsewhere"]
    body["TaskInfo"]["RulesParams"].append(second_rule)
    task_id = tasks.api.post("/CAP/AlgoTasks", body).body["Data"]["TaskInfo"]["ID"]
    emit(replica, task_id, "ILLEGAL_ADV")
    assert list(Delivery.objects.values_list("target", flat=True)) == [receiver.url]


def test_intake_sends_a_new_event_at_once_without_the_delivery_loop(
    tasks, replica, receiver, settings
):
    settings.RESULT_SEND_ON_INTAKE = True
    task_id = tasks.create(receive_url=receiver.url)["Data"]["TaskInfo"]["ID"]
    assert emit(replica, task_id) == 200
    deadline = time.monotonic() + 5
    while not receiver.received:
        assert time.monotonic() < deadline, "not sent on intake"
        time.sleep(0.02)
    assert receiver.received[0]["body"]["TaskID"] == task_id
    deadline = time.monotonic() + 5
    while Delivery.objects.get().state != "delivered":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    jobs.deliver_due()  # the loop finds nothing left to send
    assert len(receiver.received) == 1
