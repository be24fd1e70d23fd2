"""Secrets never leave the facility: the platform client's token, a replica's
engine event token, FACILITY_PLATFORM_TOKEN and FACILITY_GAT1400_PASSWORD do
not appear in any API answer, admin page, /metrics, /readyz or log record,
with either log format, through a whole flow (push, service, task, event,
registration attempt, admin pages)."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from compute.actions import ensure_local_node
from facility import registration
from facility.logs import JsonFormatter, RequestIDFilter
from facility.models import PlatformClient
from services.engine import engine_token
from services.models import AlgoService, Replica
from tests.support.engines import Engines, stop_all_replicas
from tests.support.examples import example

PLATFORM_TOKEN = "facility-platform-token-0b9e1c7d"
GAT1400_PASSWORD = "gat1400-password-5f2a8e61"


@pytest.fixture(autouse=True)
def _stop_replicas_after_test() -> Iterator[None]:
    yield
    stop_all_replicas()


@pytest.fixture
def log_text(log_format: str) -> Iterator[io.StringIO]:
    """Everything logged, formatted as the facility writes it (json or plain)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIDFilter())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield stream
    finally:
        root.removeHandler(handler)


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value in text]


@pytest.mark.parametrize("log_format", ["json", "plain"])
def test_no_secret_in_answers_pages_or_logs(
    settings: Any,
    caplog: Any,
    log_format: str,
    log_text: io.StringIO,
    api: Any,
    file_server: Any,
) -> None:
    settings.LOG_FORMAT = log_format
    settings.PLATFORM_TOKEN = PLATFORM_TOKEN
    settings.GAT1400_PASSWORD = GAT1400_PASSWORD
    settings.RESULT_SEND_ON_INTAKE = False
    caplog.set_level(logging.DEBUG)
    secrets = {
        "FACILITY_PLATFORM_TOKEN": PLATFORM_TOKEN,
        "FACILITY_GAT1400_PASSWORD": GAT1400_PASSWORD,
    }
    answers: list[tuple[str, str]] = []

    def seen(what: str, response: Any) -> Any:
        answers.append((what, response.content.decode(errors="replace")))
        return response

    # a platform client with a known token, made as the command makes it
    token = PlatformClient.new_token()
    user = get_user_model().objects.create(username="platform:secrets")
    client = PlatformClient(name="secrets", user=user)
    client.set_token(token)
    client.save()
    api.token = token
    secrets["platform client token"] = token

    ensure_local_node()
    engines = Engines(api, file_server)
    package_id = engines.package("stub-secrets")
    seen("package detail", api.get(f"/CAP/AlgoFilePackages/{package_id}"))
    seen("package list", api.get("/CAP/AlgoFilePackages"))
    created = seen(
        "service create",
        api.post(
            "/CAP/AlgoServices", {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": package_id}
        ),
    )
    assert created.status_code == 200, created.body
    service_id = created.body["Data"]["AlgoServiceID"]
    service = seen("service detail", api.get(f"/CAP/AlgoServices/{service_id}"))
    assert service.body["Data"]["Status"] == "RUNNING", service.body
    seen("service list", api.get("/CAP/AlgoServices"))
    replica = Replica.objects.get(service_id=service_id)
    secrets["engine event token"] = engine_token(replica.name)

    body = example("D.1-K.1-d")
    body["TaskInfo"]["Labels"] = {"AlgoCaBinName": "stub-engine", "Version": "1.0"}
    body["TaskInfo"]["RulesParams"][0]["ResultReceiveUrl"] = ["http://127.0.0.1:9/none"]
    body["TaskInfo"]["StreamOptions"]["VideoStreamOptions"]["Url"] = "rtsp://127.0.0.1:8554/cam"
    task = seen("task create", api.post("/CAP/AlgoTasks", body))
    assert task.status_code == 200, task.body
    task_id = task.body["Data"]["TaskInfo"]["ID"]
    seen("task detail", api.get(f"/CAP/AlgoTasks/{task_id}"))
    seen("task list", api.get("/CAP/AlgoTasks"))

    # an engine posts an event with its credential; a wrong one is refused
    event = {
        "EventKey": "s" * 32,
        "TaskID": task_id,
        "EventID": "ILLEGAL_ADV",
        "EventTime": int(time.time() * 1000),
        "EngineID": replica.name,
    }
    intake = seen(
        "event intake",
        api.post(
            "/internal/engine-events",
            event,
            Authorization=f"Bearer {secrets['engine event token']}",
        ),
    )
    assert intake.status_code == 200, intake.body
    refused = seen(
        "event intake, wrong credential",
        api.post("/internal/engine-events", event, Authorization=f"Bearer {PLATFORM_TOKEN}"),
    )
    assert refused.status_code == 401
    seen(
        "refused platform call",
        Client().get("/CAP/AlgoServices", HTTP_AUTHORIZATION=f"Bearer {PLATFORM_TOKEN}"),
    )

    # a registration attempt that fails (nobody listens): sends the platform token
    settings.PLATFORM_URL = "http://127.0.0.1:9"
    assert registration.keep_registered().startswith("failed")
    settings.PLATFORM_URL = ""

    seen("metrics", Client().get("/metrics"))
    seen("readyz", Client().get("/readyz"))
    seen("healthz", Client().get("/healthz"))

    admin = Client()
    admin.force_login(
        get_user_model().objects.create_superuser("root", "root@example.org", "pw-root-123456")
    )
    service_pk = AlgoService.objects.get(service_id=service_id).pk
    for path in (
        "/admin/facility/platformclient/",
        f"/admin/facility/platformclient/{client.pk}/change/",
        "/admin/facility/platformregistration/",
        "/admin/facility/auditrecord/",
        "/admin/services/replica/",
        f"/admin/services/replica/{replica.pk}/change/",
        "/admin/services/algoservice/",
        f"/admin/services/algoservice/{service_pk}/change/",
        "/admin/services/serviceevent/",
    ):
        page = seen(path, admin.get(path))
        assert page.status_code == 200, path

    for what, text in answers:
        assert not _leaks(text, secrets), (what, _leaks(text, secrets))
    records = [f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records]
    assert records and log_text.getvalue()
    for line in records:
        assert not _leaks(line, secrets), (_leaks(line, secrets), line)
    assert not _leaks(log_text.getvalue(), secrets), _leaks(log_text.getvalue(), secrets)
