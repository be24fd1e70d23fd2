"""Analysis tasks (表37–43) against real engine processes (the stub engine
of tests/support): scheduling, lifecycle rules and restart policies."""

from __future__ import annotations

import os
import signal

import pytest
import requests

from services import jobs as service_jobs
from services.models import AlgoService, Replica
from tasks import jobs
from tasks.models import AlgoTask
from tests.support.examples import example


def engine_tasks(replica: Replica) -> dict[str, dict]:
    data = requests.get(f"{replica.engine_url}/AlgoTasks", timeout=3).json()["Data"]
    return {task["TaskID"]: task for task in data["Tasks"]}


def control(replica: Replica, task_id: str, **fields: str) -> None:
    requests.post(f"{replica.engine_url}/_control/{task_id}", json=fields, timeout=3)


@pytest.fixture
def service(engines) -> AlgoService:
    engines.package()
    service_id = engines.create(Replicas=1)["Data"]["AlgoServiceID"]
    return AlgoService.objects.get(pk=service_id)


def test_task_is_scheduled_automatically_by_labels_and_runs_on_the_engine(tasks, service):
    data = tasks.create()["Data"]
    task_id = data["TaskInfo"]["ID"]
    assert data["Status"] == "RUNNING", data
    assert data["AlgoServiceID"] == service.service_id
    assert data["Quota"] == 1
    assert data["RestartPolicy"] == "ALWAYS"
    assert data["CreateAndStartTask"] is True
    replica = service.replica_set.get()
    on_engine = engine_tasks(replica)[task_id]
    assert on_engine["TaskInfo"]["RulesParams"][0]["EventID"] == "ILLEGAL_ADV"


def test_task_without_a_service_starts_one_and_is_placed_when_it_runs(tasks, engines):
    engines.package()
    data = tasks.create()["Data"]
    task_id = data["TaskInfo"]["ID"]
    assert data["Status"] == "PENDING"
    assert "starting service" in data["Reason"] or "waiting for service" in data["Reason"]
    assert AlgoService.objects.count() == 1
    jobs.reconcile_tasks()
    detail = tasks.detail(task_id)
    assert detail["Status"] == "RUNNING", detail
    assert detail["AlgoServiceID"] == AlgoService.objects.get().service_id


def test_task_for_an_unknown_algorithm_waits_with_a_reason(tasks):
    body = example("D.1-K.1-d")  # megcity-a2 2.0.1: not installed here
    data = tasks.api.post("/CAP/AlgoTasks", body).body["Data"]
    assert data["Status"] == "PENDING"
    assert data["Reason"] == "no algorithm package named megcity-a2 2.0.1"
    assert data["TaskInfo"]["RulesParams"][0]["ExtendParams"]["Sensitivity"] == "低"


def test_manual_scheduling_runs_exactly_on_the_named_service(tasks, service, engines):
    other = engines.create(Replicas=1)["Data"]["AlgoServiceID"]
    data = tasks.create(AlgoServiceID=other)["Data"]
    assert data["AlgoServiceID"] == other
    body = tasks.create(AlgoServiceID="svc-nope", expect=400)
    assert "AlgoServiceID: no algorithm service svc-nope" in body["Message"]


def test_created_but_not_started_task_waits_for_resume(tasks, service):
    data = tasks.create(CreateAndStartTask=False)["Data"]
    task_id = data["TaskInfo"]["ID"]
    assert data["Status"] == "PENDING"
    assert ":resume" in data["Reason"]
    jobs.reconcile_tasks()
    assert tasks.detail(task_id)["Status"] == "PENDING"
    assert tasks.api.post(f"/CAP/AlgoTasks/{task_id}:resume").status_code == 200
    assert tasks.detail(task_id)["Status"] == "RUNNING"


def test_pause_frees_the_stream_and_resume_places_it_again(tasks, service):
    task_id = tasks.create()["Data"]["TaskInfo"]["ID"]
    replica = service.replica_set.get()
    assert tasks.api.post(f"/CAP/AlgoTasks/{task_id}:pause").status_code == 200
    detail = tasks.detail(task_id)
    assert detail["Status"] == "PAUSED"
    assert detail["Quota"] == 0
    assert task_id not in engine_tasks(replica)
    jobs.reconcile_tasks()
    assert tasks.detail(task_id)["Status"] == "PAUSED"  # stays paused
    assert tasks.api.post(f"/CAP/AlgoTasks/{task_id}:resume").status_code == 200
    assert tasks.detail(task_id)["Status"] == "RUNNING"
    assert task_id in engine_tasks(replica)


def test_never_task_is_updated_only_while_paused(tasks, service):
    task_id = tasks.create(RestartPolicy="NEVER")["Data"]["TaskInfo"]["ID"]
    update = example("D.5-K.5-d")
    update["RestartPolicy"] = "NEVER"
    response = tasks.api.put(f"/CAP/AlgoTasks/{task_id}", update)
    assert response.status_code == 409
    assert "only while PAUSED" in response.body["Message"]
    tasks.api.post(f"/CAP/AlgoTasks/{task_id}:pause")
    response = tasks.api.put(f"/CAP/AlgoTasks/{task_id}", update)
    assert response.status_code == 200, response.body
    assert response.body["Data"]["Status"] == "PAUSED"


def test_always_task_takes_new_rules_while_running(tasks, service):
    task_id = tasks.create()["Data"]["TaskInfo"]["ID"]
    body = tasks.body()
    body["TaskInfo"]["RulesParams"][0]["EventID"] = "PERSON_IN_AREA"
    response = tasks.api.put(
        f"/CAP/AlgoTasks/{task_id}", {"RestartPolicy": "ALWAYS", "TaskInfo": body["TaskInfo"]}
    )
    assert response.status_code == 200, response.body
    assert response.body["Data"]["Status"] == "RUNNING"
    on_engine = engine_tasks(service.replica_set.get())[task_id]
    assert on_engine["TaskInfo"]["RulesParams"][0]["EventID"] == "PERSON_IN_AREA"
    assert AlgoTask.objects.get(pk=task_id).rule_version == 2


def test_delete_is_idempotent_and_leaves_the_neighbour_running(tasks, service):
    doomed = tasks.create()["Data"]["TaskInfo"]["ID"]
    neighbour = tasks.create()["Data"]["TaskInfo"]["ID"]
    replica = service.replica_set.get()
    assert tasks.api.delete(f"/CAP/AlgoTasks/{doomed}").status_code == 200
    assert tasks.api.delete(f"/CAP/AlgoTasks/{doomed}").status_code == 200
    assert tasks.api.delete("/CAP/AlgoTasks/never-was").status_code == 404
    assert tasks.api.get(f"/CAP/AlgoTasks/{doomed}").status_code == 404
    on_engine = engine_tasks(replica)
    assert doomed not in on_engine and neighbour in on_engine
    assert tasks.detail(neighbour)["Status"] == "RUNNING"


def test_over_capacity_task_waits_and_the_service_reports_overload(tasks, service):
    ids = [tasks.create()["Data"]["TaskInfo"]["ID"] for _ in range(4)]  # capacity 3
    statuses = [tasks.detail(i)["Status"] for i in ids]
    assert statuses == ["RUNNING", "RUNNING", "RUNNING", "PENDING"]
    assert "waiting for capacity on service" in tasks.detail(ids[3])["Reason"]
    assert tasks.engines.detail(service.service_id)["Status"] == "OVERLOAD"
    tasks.api.delete(f"/CAP/AlgoTasks/{ids[0]}")
    jobs.reconcile_tasks()
    assert tasks.detail(ids[3])["Status"] == "RUNNING"
    assert tasks.engines.detail(service.service_id)["Status"] == "RUNNING"


def test_lost_stream_errors_a_never_task_and_an_always_task_recovers(tasks, service):
    never = tasks.create(RestartPolicy="NEVER")["Data"]["TaskInfo"]["ID"]
    always = tasks.create(RestartPolicy="ALWAYS")["Data"]["TaskInfo"]["ID"]
    replica = service.replica_set.get()
    for task_id in (never, always):
        control(replica, task_id, Reason="stream unreachable: connection refused")
    jobs.reconcile_tasks()
    assert tasks.detail(never)["Status"] == "ERROR"
    assert tasks.detail(never)["Reason"] == "stream unreachable: connection refused"
    assert never not in engine_tasks(replica)
    recovering = tasks.detail(always)
    assert recovering["Status"] == "PENDING"
    assert "reconnecting" in recovering["Reason"]
    control(replica, always, Reason="")
    jobs.reconcile_tasks()
    assert tasks.detail(always)["Status"] == "RUNNING"
    assert AlgoTask.objects.get(pk=always).restart_count == 1


def test_a_stream_that_ends_finishes_the_task(tasks, service):
    task_id = tasks.create()["Data"]["TaskInfo"]["ID"]
    control(service.replica_set.get(), task_id, Status="FINISHED", Reason="end of file")
    jobs.reconcile_tasks()
    detail = tasks.detail(task_id)
    assert detail["Status"] == "FINISHED"
    assert detail["Quota"] == 0


def test_dead_replica_re_places_always_tasks_and_errors_never_tasks(tasks, engines):
    engines.package()
    service_id = engines.create(Replicas=2)["Data"]["AlgoServiceID"]
    always = tasks.create(AlgoServiceID=service_id)["Data"]["TaskInfo"]["ID"]
    never = tasks.create(AlgoServiceID=service_id, RestartPolicy="NEVER")["Data"]["TaskInfo"]["ID"]
    task = AlgoTask.objects.get(pk=always)
    victim = task.replica
    # put the NEVER task on the same replica as the ALWAYS one, to lose both
    AlgoTask.objects.filter(pk=never).update(replica=victim)
    pid = requests.get(f"{victim.engine_url}/Health", timeout=3).json()["Data"]["Pid"]
    os.kill(pid, signal.SIGKILL)
    service_jobs.reconcile_services()  # notices the exit (and restarts it)
    jobs.reconcile_tasks()
    moved = AlgoTask.objects.get(pk=always)
    assert moved.status == "RUNNING", moved.reason
    assert moved.restart_count == 1
    errored = AlgoTask.objects.get(pk=never)
    assert errored.status == "ERROR"
    assert "engine replica lost" in errored.reason


def test_search_filters_and_pages(tasks, service):
    tasks.create()
    tasks.create(RestartPolicy="NEVER")
    tasks.create(CreateAndStartTask=False)
    search = lambda **body: tasks.api.post("/CAP/AlgoTasks:search", body).body["Data"]  # noqa: E731
    assert search()["TotalSize"] == 3
    assert search(Status="RUNNING")["TotalSize"] == 2
    assert search(Status="PENDING")["TotalSize"] == 1
    assert search(RestartPolicy="NEVER")["TotalSize"] == 1
    assert search(CreateAndStartTask=False)["TotalSize"] == 1
    assert search(EventID="ILLEGAL_ADV")["TotalSize"] == 3
    assert search(EventID="OTHER")["TotalSize"] == 0
    page = search(PageSize=2, PageNumber=2)
    assert page["TotalSize"] == 3 and len(page["Records"]) == 1
    assert tasks.api.post("/CAP/AlgoTasks:search", example("D.7-K.7-d")).status_code == 200


def test_cad_tasks_are_kept_apart_from_cap_tasks(tasks, service):
    cad = tasks.create(prefix="/CAD")["Data"]["TaskInfo"]["ID"]
    assert tasks.detail(cad, prefix="/CAD")["Status"] == "RUNNING"
    assert tasks.api.get(f"/CAP/AlgoTasks/{cad}").status_code == 404
    assert tasks.api.post("/CAP/AlgoTasks:search", {}).body["Data"]["TotalSize"] == 0
    assert tasks.api.post("/CAD/AlgoTasks:search", {}).body["Data"]["TotalSize"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda b: b.pop("RestartPolicy"), "RestartPolicy: is required"),
        (
            lambda b: b.update(RestartPolicy="SOMETIMES"),
            "RestartPolicy: must be one of: NEVER, ALWAYS",
        ),
        (lambda b: b["TaskInfo"].pop("RulesParams"), "TaskInfo.RulesParams: is required"),
        (lambda b: b["TaskInfo"].update(RulesParams=[]), "TaskInfo.RulesParams"),
        (lambda b: b["TaskInfo"].pop("StreamOptions"), "TaskInfo.StreamOptions: is required"),
        (
            lambda b: b["TaskInfo"]["StreamOptions"]["VideoStreamOptions"].update(Url="ftp://x"),
            "TaskInfo.StreamOptions.VideoStreamOptions.Url: must be a stream URL",
        ),
        (
            lambda b: b["TaskInfo"]["RulesParams"][0]["Areas"][0]["Points"][0].update(PointX=1.5),
            "TaskInfo.RulesParams[0].Areas[0].Points[0].PointX: must be at most 1.0",
        ),
        (
            lambda b: b["TaskInfo"]["RulesParams"][0].update(ResultReceiveUrl=["mailto:x"]),
            "TaskInfo.RulesParams[0].ResultReceiveUrl[0]: must be an http:// or https:// URL",
        ),
        (
            lambda b: b["TaskInfo"]["RulesParams"][0]["ExtendParams"].update(DurationThreshold="1"),
            "TaskInfo.RulesParams[0].ExtendParams.DurationThreshold: must be a number",
        ),
        (lambda b: b.update(CreateAndStartTask="yes"), "CreateAndStartTask: must be true or false"),
        (lambda b: b.update(AlgoServiceID="s" * 129), "AlgoServiceID: at most 128 characters"),
        (
            lambda b: b["TaskInfo"].update(Labels={}),
            "TaskInfo.Labels.AlgoCaBinName: name the algorithm",
        ),
    ],
)
def test_task_request_rules_are_enforced(tasks, change, message):
    body = tasks.body()
    change(body)
    response = tasks.api.post("/CAP/AlgoTasks", body)
    assert response.status_code == 400, response.body
    assert message in response.body["Message"]
    assert not AlgoTask.objects.exists()
