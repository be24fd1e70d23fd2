"""Health, readiness, metrics and logs of the facility itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from facility.health import beat
from facility.models import Heartbeat
from tasks.models import AlgoTask

ROOT = Path(__file__).resolve().parents[2]


def test_liveness_answers(client):
    assert client.get("/healthz").json() == {"status": "alive"}


def test_readiness_names_what_is_missing_and_flips_when_it_returns(client):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["missing"] == ["workers", "loops"]
    beat("workers")
    beat("loops")
    response = client.get("/readyz")
    assert response.status_code == 200, response.json()
    assert response.json()["checks"]["database"]["ok"] is True
    Heartbeat.objects.filter(name="workers").update(at=timezone.now() - timedelta(hours=1))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["missing"] == ["workers"]
    assert "s ago" in response.json()["checks"]["workers"]["detail"]


def test_readiness_says_the_database_is_unreachable():
    script = (
        "import django, json; django.setup(); from facility.health import checks; "
        "print(json.dumps(checks()))"
    )
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        "DJANGO_SETTINGS_MODULE": "facility.settings",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    checks = json.loads(result.stdout.strip().splitlines()[-1])
    assert checks["database"]["ok"] is False
    assert "unreachable" in checks["database"]["detail"]


def _metrics(client, **extra) -> dict[str, list]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content
    return {
        family.name: family.samples
        for family in text_string_to_metric_families(response.content.decode())
    }


def _task_count(families: dict, status: str) -> float:
    return next((s.value for s in families["facility_tasks"] if s.labels["status"] == status), 0.0)


def test_metrics_parse_and_move_when_tasks_change(client, api):
    api.post("/CAP/AlgoFilePackages:search", {})
    before = _metrics(client)
    assert _task_count(before, "RUNNING") == 0
    info = {"RulesParams": [], "StreamOptions": {"VideoStreamOptions": {"Url": "rtsp://x"}}}
    for status in ("RUNNING", "RUNNING", "PENDING"):
        AlgoTask.objects.create(
            restart_policy="ALWAYS", task_info=info, stream_url="rtsp://x", status=status
        )
    after = _metrics(client)
    assert _task_count(after, "RUNNING") == 2
    assert _task_count(after, "PENDING") == 1
    requests = [
        s for s in after["facility_requests"] if s.labels.get("interface") == "cap-packages-search"
    ]
    assert requests and requests[0].labels["code"] == "0"
    for name in (
        "facility_services",
        "facility_replicas",
        "facility_deliveries",
        "facility_delivery_queue_depth",
        "facility_download_bytes",
        "facility_worker_queue_depth",
    ):
        assert name in after, name


def test_metrics_need_their_own_credential_from_elsewhere(client, settings):
    response = client.get("/metrics", REMOTE_ADDR="10.1.2.3")
    assert response.status_code == 403
    settings.METRICS_TOKEN = "scrape-me"
    families = _metrics(client, REMOTE_ADDR="10.1.2.3", HTTP_AUTHORIZATION="Bearer scrape-me")
    assert "facility_tasks" in families


def test_json_logs_are_one_object_per_line_without_secrets():
    script = (
        "import django, logging; django.setup(); "
        "from facility.logs import current_request_id; current_request_id.set('req-7'); "
        "log = logging.getLogger('facility.test'); "
        "log.warning('task placed', extra={'task_id': 't-1', 'token': 'hunter2'}); "
        "log.error('second line')"
    )
    env = {
        **os.environ,
        "FACILITY_LOG_FORMAT": "json",
        "DJANGO_SETTINGS_MODULE": "facility.settings",
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in result.stderr.strip().splitlines()]
    assert [line["message"] for line in lines] == ["task placed", "second line"]
    assert lines[0]["request_id"] == "req-7"
    assert lines[0]["task_id"] == "t-1"
    assert lines[0]["level"] == "WARNING"
    assert "hunter2" not in result.stderr
