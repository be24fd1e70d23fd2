"""Upgrade across migrations without losing tasks (docs/upgrade.md): a scratch
database is migrated to the first migration of every app of the facility,
filled through the historical models of that state (packages, a service,
tasks, events), then migrated to the latest with `manage.py migrate`, as an
operator upgrades; every row must come out intact."""

from __future__ import annotations

import json

from .conftest import ScratchFacility

APPS = ["facility", "algorithms", "compute", "services", "tasks", "ccp"]

POPULATE_AT_FIRST_MIGRATIONS = """
import json
import django
django.setup()
from datetime import datetime, timezone
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

APPS = %(apps)r
executor = MigrationExecutor(connection)
targets = [(app, executor.loader.graph.root_nodes(app)[0][1]) for app in APPS]
executor.migrate(targets)
executor.loader.build_graph()
state = executor.loader.project_state(targets).apps
applied_then = sorted(executor.loader.applied_migrations)

def create(model, **values):
    names = {f.name for f in model._meta.get_fields()}
    return model.objects.create(**{k: v for k, v in values.items() if k in names})

when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
Package = state.get_model("algorithms", "AlgoFilePackage")
Service = state.get_model("services", "AlgoService")
Task = state.get_model("tasks", "AlgoTask")
Event = state.get_model("tasks", "TaskEvent")
packages = [
    create(Package, package_id=f"pkg-{n}", url=f"http://127.0.0.1:9/{n}.tar.gz", md5="a" * 32,
           status=2, name=f"alpha-{n}", version="1.0", tags=["person"],
           bin={"LocalUri": "bin/engine.py"}, content_dir=f"/data/packages/pkg-{n}",
           created_at=when, transfer_state="done")
    for n in (1, 2)
]
service = create(Service, service_id="svc-1", package=packages[0], replicas=2, xpu_type="CPU",
                 runtime="local", status="RUNNING", created_at=when)
for n in range(5):
    create(Task, task_id=f"task-{n}", scope="cap", restart_policy="ALWAYS",
           task_info={"Number": n, "Labels": {"AlgoCaBinName": "alpha-1"}},
           algo_name="alpha-1", algo_version="1.0", stream_url=f"rtsp://127.0.0.1:8554/cam{n}",
           requested_service=service, service=service, desired_state="running",
           status="RUNNING" if n %% 2 else "PENDING", created_at=when)
for n in range(3):
    create(Event, event_key=f"key-{n}", task_id=f"task-{n}", event_id="intrusion",
           event_time=when, document={"EventID": "intrusion", "N": n}, received_at=when)
print(json.dumps({"applied_then": applied_then, "targets": targets}))
"""

READ_AT_LATEST = """
import json
import django
django.setup()
from algorithms.models import AlgoFilePackage
from services.models import AlgoService
from tasks.models import AlgoTask, TaskEvent
print(json.dumps({
    "packages": sorted(
        [p.package_id, p.status, p.name, p.url, p.tags, p.bin]
        for p in AlgoFilePackage.objects.all()
    ),
    "services": [[s.service_id, s.package_id, s.replicas, s.runtime, s.status]
                 for s in AlgoService.objects.all()],
    "tasks": sorted(
        [t.task_id, t.status, t.restart_policy, t.task_info, t.stream_url, t.service_id,
         t.created_at.isoformat()]
        for t in AlgoTask.objects.all()
    ),
    "events": sorted([e.event_key, e.task_id, e.document] for e in TaskEvent.objects.all()),
}))
"""


def test_upgrade_from_the_first_migrations_keeps_every_task(
    scratch_facility: ScratchFacility,
) -> None:
    before = json.loads(scratch_facility.python(POPULATE_AT_FIRST_MIGRATIONS % {"apps": APPS}))
    applied_then = {tuple(item) for item in before["applied_then"]}
    for app, first in before["targets"]:
        assert (app, first) in applied_then

    # the upgrade itself, as docs/upgrade.md has the operator run it
    plan = scratch_facility.manage("migrate", "--plan")
    output = scratch_facility.manage("migrate", "--noinput")
    later = [line.strip() for line in output.splitlines() if line.strip().startswith("Applying ")]
    # the test only means something while there are later migrations to cross
    assert any(
        line.split()[1].split(".")[0] in APPS and not line.endswith("0001_initial... OK")
        for line in later
    ), plan
    unapplied = scratch_facility.manage("showmigrations", "--plan")
    assert "[ ]" not in unapplied

    after = json.loads(scratch_facility.python(READ_AT_LATEST))
    assert after["packages"] == [
        [
            "pkg-1",
            2,
            "alpha-1",
            "http://127.0.0.1:9/1.tar.gz",
            ["person"],
            {"LocalUri": "bin/engine.py"},
        ],
        [
            "pkg-2",
            2,
            "alpha-2",
            "http://127.0.0.1:9/2.tar.gz",
            ["person"],
            {"LocalUri": "bin/engine.py"},
        ],
    ]
    assert after["services"] == [["svc-1", "pkg-1", 2, "local", "RUNNING"]]
    assert len(after["tasks"]) == 5
    for n, task in enumerate(after["tasks"]):
        assert task[:6] == [
            f"task-{n}",
            "RUNNING" if n % 2 else "PENDING",
            "ALWAYS",
            {"Number": n, "Labels": {"AlgoCaBinName": "alpha-1"}},
            f"rtsp://127.0.0.1:8554/cam{n}",
            "svc-1",
        ]
        assert task[6].startswith("2026-01-02")
    assert after["events"] == [
        [f"key-{n}", f"task-{n}", {"EventID": "intrusion", "N": n}] for n in range(3)
    ]
