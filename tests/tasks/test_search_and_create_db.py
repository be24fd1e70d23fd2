"""What the task search and create optimisations (issue 5) must not change:
an EventID search finds exactly the tasks whose rules carry that EventID, in
its scope, with the right TotalSize (counted from the event-type index alone
when EventID is the only filter); a create still leaves its history, its
event types and its audit row, in fewer queries. Runs on SQLite and, with
DATABASE_URL, on PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from algorithms.choices import PackageStatus
from algorithms.models import AlgoFilePackage
from compute.actions import ensure_local_node
from facility.models import AuditRecord
from services.choices import ReplicaState, ServiceStatus
from services.models import AlgoService, Replica
from tasks.models import AlgoTask, TaskEventType
from tests.support.examples import example

pytestmark = pytest.mark.django_db


def body(*event_ids: str, algorithm: str = "full-algo", policy: str = "ALWAYS") -> dict:
    """A K.1 body with one rule per EventID."""
    data = example("D.1-K.1-d")
    data["RestartPolicy"] = policy
    info = data["TaskInfo"]
    info["Labels"] = {"AlgoCaBinName": algorithm, "Version": "1.0"}
    info["StreamOptions"]["VideoStreamOptions"]["Url"] = "rtsp://127.0.0.1:8554/cam"
    template = info["RulesParams"][0]
    template["ResultReceiveUrl"] = ["http://127.0.0.1:9/none"]
    info["RulesParams"] = [{**copy.deepcopy(template), "EventID": e} for e in event_ids]
    return data


def search(api: Any, prefix: str = "/CAP", **filters: Any) -> dict:
    response = api.post(f"{prefix}/AlgoTasks:search", {"PageSize": 1000, **filters})
    assert response.status_code == 200, response.body
    return response.body["Data"]


def found(api: Any, prefix: str = "/CAP", **filters: Any) -> set[str]:
    data = search(api, prefix, **filters)
    ids = {record["TaskInfo"]["ID"] for record in data["Records"]}
    assert data["TotalSize"] == len(ids) == len(data["Records"])
    return ids


@pytest.fixture
def full_service() -> AlgoService:
    """A RUNNING service whose one replica is full: new tasks wait for
    capacity without any engine being called (the benchmark's path)."""
    node = ensure_local_node()
    package = AlgoFilePackage.objects.create(
        package_id="full-pkg",
        url="http://127.0.0.1:9/p.tar",
        name="full-algo",
        version="1.0",
        status=PackageStatus.COMPLETE,
    )
    service = AlgoService.objects.create(
        service_id="svc-full",
        package=package,
        replicas=1,
        xpu_type="CPU",
        runtime="local",
        status=ServiceStatus.RUNNING,
        stream_capacity=1,
    )
    replica = Replica.objects.create(
        service=service,
        index=0,
        name="svc-full-r0",
        node=node,
        quota=1,
        port=30999,
        runtime="local",
        handle_ref="999999:0",
        state=ReplicaState.RUNNING,
    )
    AlgoTask.objects.create(
        task_id="holder",
        restart_policy="ALWAYS",
        task_info=body("HOLD")["TaskInfo"],
        algo_name="full-algo",
        algo_version="1.0",
        stream_url="rtsp://127.0.0.1:8554/held",
        service=service,
        replica=replica,
        status="RUNNING",
        quota=1,
    )
    return service


def create(api: Any, data: dict, prefix: str = "/CAP") -> str:
    response = api.post(f"{prefix}/AlgoTasks", data)
    assert response.status_code == 200, response.body
    return response.body["Data"]["TaskInfo"]["ID"]


def test_event_id_search_finds_exactly_the_tasks_with_that_event(api, full_service) -> None:
    smoke = create(api, body("SMOKE"))
    both = create(api, body("SMOKE", "HELMET"))
    helmet = create(api, body("HELMET"))
    paused = create(api, {**body("SMOKE", policy="NEVER"), "CreateAndStartTask": False})
    cad_smoke = create(api, body("SMOKE"), prefix="/CAD")

    assert found(api, EventID="SMOKE") == {smoke, both, paused}
    assert found(api, EventID="HELMET") == {both, helmet}
    assert found(api, EventID="NOTHING") == set()
    assert found(api, "/CAD", EventID="SMOKE") == {cad_smoke}
    assert found(api, "/CAD", EventID="HELMET") == set()
    # with other filters the count joins the tasks
    assert found(api, EventID="SMOKE", RestartPolicy="NEVER") == {paused}
    assert found(api, EventID="SMOKE", Status="PENDING") == {smoke, both, paused}
    assert found(api, EventID="SMOKE", CreateAndStartTask=True) == {smoke, both}
    # a page past the first still counts them all
    page = search(api, EventID="SMOKE", PageSize=2, PageNumber=2)
    assert page["TotalSize"] == 3 and len(page["Records"]) == 1

    # new rules move a task between EventIDs; a deleted task leaves them
    assert api.put(f"/CAP/AlgoTasks/{smoke}", body("HELMET")).status_code == 200
    assert api.delete(f"/CAP/AlgoTasks/{both}").status_code == 200
    assert found(api, EventID="SMOKE") == {paused}
    assert found(api, EventID="HELMET") == {smoke, helmet}
    scopes = dict(TaskEventType.objects.values_list("task_id", "scope"))
    assert scopes[cad_smoke] == "cad" and scopes[helmet] == "cap"


def test_status_and_policy_counts_match_the_records(api, full_service) -> None:
    for n in range(6):
        create(api, body("SMOKE", policy="NEVER" if n % 2 else "ALWAYS"))
    assert len(found(api, Status="PENDING", RestartPolicy="NEVER")) == 3
    assert len(found(api, RestartPolicy="ALWAYS")) == 4  # with the running holder
    assert found(api, Status="RUNNING") == {"holder"}
    assert len(found(api)) == 7


def test_a_create_waiting_for_capacity_keeps_its_history_and_audit_row(
    api, full_service, django_assert_max_num_queries
) -> None:
    create(api, body("SMOKE"))  # warm: the local node, caches
    audits = AuditRecord.objects.count()

    # the whole call, authentication and audit row included (it took 18)
    with django_assert_max_num_queries(14):
        task_id = create(api, body("SMOKE", "HELMET"))

    task = AlgoTask.objects.get(pk=task_id)
    assert (task.status, task.reason) == ("PENDING", "waiting for capacity on service svc-full")
    assert set(task.event_types.values_list("event_id", flat=True)) == {"SMOKE", "HELMET"}
    # created, then given its reason: two history rows, as before
    history = list(task.history.order_by("history_date").values_list("history_type", "reason"))
    assert history == [
        ("+", "waiting to be placed"),
        ("~", "waiting for capacity on service svc-full"),
    ]
    assert AuditRecord.objects.count() == audits + 1
    full_service.refresh_from_db()
    assert full_service.status == ServiceStatus.OVERLOAD
