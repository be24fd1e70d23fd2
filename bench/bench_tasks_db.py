"""Benchmark of the task interfaces on a large table (issue 5's numbers).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/bench_tasks_db.py [--tasks 100000] [--repeat 300]

Builds a throw-away database (never the facility's own) holding TASKS tasks
(60 % FINISHED, 20 % PAUSED, 10 % ERROR, 10 % PENDING and stopped, 40 RUNNING
on a RUNNING service of 4 replicas at full capacity), then measures through
the whole Django stack (django.test.Client: URL routing, bearer
authentication, request validation, the actions, the JSON answer):

* POST /CAP/AlgoTasks (表37) of the K.1 example: the task is stored and the
  scheduler runs its full path (candidate services, free capacity per replica,
  OVERLOAD check) and leaves it PENDING "waiting for capacity" (no engine
  is called: the replicas are full);
* POST /CAP/AlgoTasks:search (表42) of one page (20) with a Status filter, for
  each status, and with an EventID filter;

each as p50/p99 and as a ratio to a bare `SELECT 1` round trip measured in the
same run. Targets: create p99 < 30 ms, search p99 < 50 ms.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facility.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

# the process starts as gunicorn starts the facility: the WSGI module loads
# the URLconf and freezes the loaded heap out of the garbage collector's way
import facility.wsgi  # noqa: E402, F401
from bench.common import Report, percentile, scratch_database, timed  # noqa: E402

report = Report("bench_tasks_db")
NAME, VERSION = "bench-algo", "1.0"


def k1_body() -> dict:
    from tests.support.examples import example

    body = example("D.1-K.1-d")
    body["TaskInfo"]["Labels"] = {"AlgoCaBinName": NAME, "Version": VERSION}
    body["TaskInfo"]["StreamOptions"]["VideoStreamOptions"]["Url"] = "rtsp://127.0.0.1:8554/cam"
    body["TaskInfo"]["RulesParams"][0]["ResultReceiveUrl"] = ["http://127.0.0.1:9/events"]
    return body


def populate(count: int) -> None:
    from algorithms.choices import PackageStatus
    from algorithms.models import AlgoFilePackage
    from compute.actions import ensure_local_node
    from services.choices import ReplicaState, ServiceStatus
    from services.models import AlgoService, Replica
    from tasks.choices import DesiredState
    from tasks.models import AlgoTask, TaskEventType

    node = ensure_local_node()
    package = AlgoFilePackage.objects.create(
        package_id="bench-pkg",
        url="http://127.0.0.1:9/bench.tar",
        name=NAME,
        version=VERSION,
        status=PackageStatus.COMPLETE,
    )
    service = AlgoService.objects.create(
        service_id="svc-bench",
        package=package,
        replicas=4,
        xpu_type="CPU",
        runtime="local",
        status=ServiceStatus.RUNNING,
        stream_capacity=10,
    )
    replicas = [
        Replica.objects.create(
            service=service,
            index=i,
            name=f"svc-bench-r{i}",
            node=node,
            quota=1,
            port=30000 + i,
            runtime="local",
            handle_ref=f"{100000 + i}:0",
            state=ReplicaState.RUNNING,
        )
        for i in range(4)
    ]
    info = k1_body()["TaskInfo"]
    now = timezone.now()
    event_ids = ["ILLEGAL_ADV", "PERSON_IN_AREA", "HELMET", "SMOKE"]
    batch: list[AlgoTask] = []
    types: list[TaskEventType] = []

    def flush() -> None:
        AlgoTask.objects.bulk_create(batch)
        TaskEventType.objects.bulk_create(types)
        batch.clear()
        types.clear()

    for n in range(count):
        share = n % 10
        # (desired states as the model spells them: the scheduler's counts
        # of tasks waiting to run filter on them)
        status, desired = (
            ("FINISHED", DesiredState.RUNNING)
            if share < 6
            else ("PAUSED", DesiredState.STOPPED)
            if share < 8
            else ("ERROR", DesiredState.STOPPED)
            if share < 9
            else ("PENDING", DesiredState.STOPPED)
        )
        replica = None
        if n < 40:
            status, desired, replica = "RUNNING", DesiredState.RUNNING, replicas[n % 4]
        task_info = copy.deepcopy(info)
        task_info["ID"] = f"bench-{n:07d}"
        event_id = event_ids[n % len(event_ids)]
        task_info["RulesParams"][0]["EventID"] = event_id
        task = AlgoTask(
            task_id=task_info["ID"],
            restart_policy="ALWAYS" if n % 3 else "NEVER",
            create_and_start=bool(n % 5),
            task_info=task_info,
            algo_name=NAME,
            algo_version=VERSION,
            stream_url=f"rtsp://127.0.0.1:8554/cam{n}",
            service=service if replica else None,
            replica=replica,
            desired_state=desired,
            status=status,
            reason="" if status == "RUNNING" else f"{status.lower()} for the benchmark",
            quota=1 if replica else 0,
            created_at=now - timedelta(seconds=count - n),
        )
        batch.append(task)
        types.append(TaskEventType(task=task, event_id=event_id))
        if len(batch) >= 5000:
            flush()
    flush()
    if connection.vendor == "postgresql":
        # what autovacuum does to a table after a bulk load: statistics, and
        # the visibility map that lets counts run from an index alone
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE tasks_algotask")
            cursor.execute("VACUUM ANALYZE tasks_taskeventtype")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=300)
    parser.add_argument("--keep-db", action="store_true", help="leave the filled database behind")
    args = parser.parse_args()

    with scratch_database("bench_tasks", keep=args.keep_db):
        run(args)
    report.write()


def run(args: argparse.Namespace) -> None:
    import json

    from django.contrib.auth import get_user_model

    from facility.models import PlatformClient
    from tasks.models import AlgoTask

    settings.FACILITY_QUEUE_MODE = "sync"
    start = time.perf_counter()
    populate(args.tasks)
    report(
        f"database: {connection.vendor}; {AlgoTask.objects.count():,} tasks "
        f"(filled in {time.perf_counter() - start:.0f} s); through django.test.Client"
    )

    token = PlatformClient.new_token()
    row = PlatformClient(name="bench", user=get_user_model().objects.create(username="p:bench"))
    row.set_token(token)
    row.save()
    http = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    body = json.dumps(k1_body())

    def create() -> None:
        response = http.post("/CAP/AlgoTasks", body, content_type="application/json")
        assert response.status_code == 200, response.content[:300]
        data = response.json()["Data"]
        assert data["Status"] == "PENDING", data

    def search(**filters: str):  # type: ignore[no-untyped-def]
        payload = json.dumps({"PageNumber": 2, "PageSize": 20, **filters})

        def go() -> None:
            response = http.post("/CAP/AlgoTasks:search", payload, content_type="application/json")
            assert response.status_code == 200, response.content[:300]
            assert response.json()["Data"]["Records"] or filters.get("Status") == "RUNNING"

        return go

    baseline = timed(select_one, args.repeat * 5)
    base50, base99 = percentile(baseline, 0.5), percentile(baseline, 0.99)
    report(f"baseline SELECT 1: p50 {base50 * 1000:.3f} ms, p99 {base99 * 1000:.3f} ms")
    report(f"{'interface':<46} {'p50 ms':>8} {'p99 ms':>8} {'p50/SEL1':>9} {'p99/SEL1':>9}")
    cases = [("POST /CAP/AlgoTasks (K.1, waits for capacity)", create, 0.030)]
    for status in ("RUNNING", "PENDING", "PAUSED", "ERROR", "FINISHED"):
        cases.append((f"POST :search Status={status} (page 2 of 20)", search(Status=status), 0.050))
    cases.append(("POST :search EventID=SMOKE (page 2 of 20)", search(EventID="SMOKE"), 0.050))
    cases.append(
        (
            "POST :search Status=FINISHED+RestartPolicy=NEVER",
            search(Status="FINISHED", RestartPolicy="NEVER"),
            0.050,
        )
    )
    for label, call, target in cases:
        latencies = timed(call, args.repeat)
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        report(
            f"{label:<46} {p50 * 1000:>8.2f} {p99 * 1000:>8.2f} "
            f"{p50 / base50:>9.0f} {p99 / base99:>9.0f}"
            + (f"   (target p99 < {target * 1000:.0f} ms)" if p99 < target else "   (OVER target)")
        )


if __name__ == "__main__":
    main()
