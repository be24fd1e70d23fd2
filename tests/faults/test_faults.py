"""Faults survived: while a task runs, parts of the facility are killed with
SIGKILL (the web server, the workers, the loops, a replica, everything at
once) and the facility is checked afterwards: every accepted request is
still there, the ALWAYS task is RUNNING again, no replica is duplicated, no
stored event is lost or delivered twice. bench/bench_recovery.py reports the
recovery times of the same faults."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.faults.harness import Facility, scratch_database, stub_package, wait_for
from tests.support.http_server import FileServer
from tests.support.receiver import Receiver

pytestmark = pytest.mark.faults


class World:
    service_id = ""
    task_id = ""
    engine_url = ""


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture(scope="module")
def facility(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Facility]:
    data = tmp_path_factory.mktemp("facility")
    url, drop = scratch_database()
    facility = Facility(data, url)
    try:
        facility.prepare()
        facility.start()
        yield facility
    finally:
        facility.stop()
        for pid_file in (data / "runtime" / "local").glob("*.pid"):
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pid_file.read_text().strip() or 0), 9)
        drop()
        shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def world(facility: Facility, receiver: Receiver, tmp_path_factory) -> World:
    served = tmp_path_factory.mktemp("served")
    server = FileServer(served)
    server.start()
    url = server.add("stub.tar.gz", stub_package())
    assert (
        facility.call("POST", "/CAP/AlgoFilePackages", {"AlgoFilePackageID": "stub-1", "Url": url})[
            "Code"
        ]
        == 0
    )
    wait_for(
        lambda: facility.call("GET", "/CAP/AlgoFilePackages/stub-1")["Data"]["Status"] == 2,
        60,
        "the package",
    )
    world = World()
    created = facility.call(
        "POST",
        "/CAP/AlgoServices",
        {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": "stub-1"},
    )
    assert created["Code"] == 0, created
    world.service_id = created["Data"]["AlgoServiceID"]
    wait_for(lambda: service_status(facility, world) == "RUNNING", 60, "the service")
    body = {
        "RestartPolicy": "ALWAYS",
        "TaskInfo": {
            "Labels": {"AlgoCaBinName": "stub-engine", "Version": "1.0"},
            "RulesParams": [{"EventID": "PERSON", "ResultReceiveUrl": [receiver.url]}],
            "StreamOptions": {"VideoStreamOptions": {"Url": "rtsp://127.0.0.1:9/cam"}},
        },
    }
    world.task_id = facility.call("POST", "/CAP/AlgoTasks", body)["Data"]["TaskInfo"]["ID"]
    wait_for(lambda: task_status(facility, world) == "RUNNING", 30, "the task")
    replicas = list((facility.data_dir / "runtime" / "local").glob("*.json"))
    assert len(replicas) == 1
    import json

    port = json.loads(replicas[0].read_text())["spec"]["port"]
    world.engine_url = f"http://127.0.0.1:{port}"
    server.stop()
    return world


def service_status(facility: Facility, world: World) -> str:
    return facility.call("GET", f"/CAP/AlgoServices/{world.service_id}")["Data"]["Status"]


def task_status(facility: Facility, world: World) -> str:
    return facility.call("GET", f"/CAP/AlgoTasks/{world.task_id}")["Data"]["Status"]


def emit(world: World) -> int:
    request = urllib.request.Request(
        f"{world.engine_url}/_emit/{world.task_id}",
        data=b'{"EventID": "PERSON"}',
        headers={"Content-Type": "application/json"},
    )
    import json

    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["Data"]["SinkStatus"]


def engine_pid(world: World) -> int:
    import json

    with urllib.request.urlopen(f"{world.engine_url}/Health", timeout=5) as response:
        return json.loads(response.read())["Data"]["Pid"]


def engines_running(facility: Facility) -> list[psutil.Process]:
    """Engine processes of this facility, wherever they were started from."""
    found = []
    for process in psutil.process_iter(["name", "cmdline", "cwd"]):
        with contextlib.suppress(psutil.Error):
            cmdline = process.info["cmdline"] or []
            wrapper = process.info["name"] in ("sh", "dash", "bash")
            if (
                not wrapper
                and "engine.py" in " ".join(cmdline)
                and str(facility.data_dir) in (process.info["cwd"] or "")
            ):
                found.append(process)
    return found


def received_keys(receiver: Receiver) -> list[str]:
    return [item["headers"]["X-Event-Key"] for item in receiver.received]


def test_events_flow_before_any_fault(facility, world, receiver):
    assert emit(world) == 200
    wait_for(lambda: len(receiver.received) == 1, 20, "the first event")


def test_killed_web_server_is_restarted_and_nothing_accepted_is_lost(facility, world):
    facility.kill_child("gunicorn")
    wait_for(
        lambda: facility.call("GET", f"/CAP/AlgoTasks/{world.task_id}")["Code"] == 0, 60, "web"
    )
    assert facility.call("GET", "/CAP/AlgoFilePackages/stub-1")["Data"]["Status"] in (2, 3)
    assert task_status(facility, world) == "RUNNING"


def test_killed_workers_are_restarted_and_take_new_jobs(facility, world):
    facility.kill_child("qcluster")
    time.sleep(1)
    served = Path(facility.data_dir) / "served2"
    served.mkdir(exist_ok=True)
    server = FileServer(served)
    server.start()
    try:
        url = server.add("stub2.tar.gz", stub_package())
        facility.call("POST", "/CAP/AlgoFilePackages", {"AlgoFilePackageID": "stub-2", "Url": url})
        wait_for(
            lambda: facility.call("GET", "/CAP/AlgoFilePackages/stub-2")["Data"]["Status"] == 2,
            90,
            "a download after the workers were killed",
        )
    finally:
        server.stop()


def test_killed_loops_are_restarted_and_events_still_arrive(facility, world, receiver):
    facility.kill_child("run_loops")
    before = len(receiver.received)
    assert emit(world) == 200
    wait_for(lambda: len(receiver.received) == before + 1, 60, "an event after the loops died")


def test_killed_replica_is_restarted_and_the_task_runs_again(facility, world):
    old = engine_pid(world)
    os.kill(old, 9)
    wait_for(lambda: engine_pid(world) != old, 60, "a new engine process")
    wait_for(lambda: task_status(facility, world) == "RUNNING", 60, "the task on the new engine")
    assert len(engines_running(facility)) == 1


def test_whole_facility_killed_loses_no_stored_event_and_duplicates_no_replica(
    facility, world, receiver
):
    receiver.refuse(True)
    for _ in range(3):
        assert emit(world) == 200  # stored by the facility, not yet delivered
    pid_before = engine_pid(world)
    facility.kill_all()
    receiver.refuse(False)
    facility.start()
    wait_for(lambda: task_status(facility, world) == "RUNNING", 60, "the task after a restart")
    assert engine_pid(world) == pid_before  # the replica survived and was adopted
    assert len(engines_running(facility)) == 1
    wait_for(lambda: len(set(received_keys(receiver))) == 5, 60, "the stored events")
    keys = received_keys(receiver)
    assert len(keys) == len(set(keys)) == 5


@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres")
    or not shutil.which("pg_ctlcluster"),
    reason="needs the facility on a local PostgreSQL cluster it may restart",
)
def test_database_restart_is_survived(facility, world, receiver):
    import psycopg

    # Every web thread and worker holds a kept connection that the restart
    # kills; each must reconnect on its next request, not answer 500 once.
    for _ in range(8):
        assert facility.call("GET", f"/CAP/AlgoTasks/{world.task_id}")["Code"] == 0
    cluster = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True)
    version, name = cluster.stdout.split()[:2]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "restart"],
        check=True,
        timeout=120,
    )

    def database_accepts() -> bool:
        try:
            psycopg.connect(facility.env["DATABASE_URL"], connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    wait_for(database_accepts, 60, "PostgreSQL after its restart")
    for _ in range(8):
        assert facility.call("GET", f"/CAP/AlgoTasks/{world.task_id}")["Code"] == 0
    before = len(receiver.received)
    for _ in range(4):
        assert emit(world) == 200
    wait_for(lambda: len(receiver.received) == before + 4, 60, "the events after the restart")
    assert task_status(facility, world) == "RUNNING"
