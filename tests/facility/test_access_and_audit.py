"""Scopes, rate limits, the audit log and registration with the platform."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from facility import registration
from facility.models import AuditRecord, PlatformClient, PlatformRegistration

SEARCH = "/CAP/AlgoFilePackages:search"
PUSH = "/CAP/AlgoFilePackages"


@pytest.fixture(autouse=True)
def _fresh_rate_counts() -> None:
    cache.clear()


def test_read_only_client_may_search_but_not_change(api, settings, platform_token):
    settings.FACILITY_QUEUE_MODE = "manual"
    PlatformClient.objects.update(scope="read")
    assert api.post(SEARCH, {}).status_code == 200
    assert api.get("/CAP/Status").status_code == 200
    response = api.post(PUSH, {"AlgoFilePackageID": "x", "Url": "http://127.0.0.1:9/x"})
    assert response.status_code == 403
    assert response.body["Code"] == 40300
    assert "read-only" in response.body["Message"]
    assert api.delete("/CAP/AlgoFilePackages/x").status_code == 403


def test_client_over_its_rate_gets_429(api, platform_token):
    PlatformClient.objects.update(rate_per_minute=3)
    codes = [api.post(SEARCH, {}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert api.post(SEARCH, {}).body["Code"] == 42900


def test_mutating_calls_are_audited_with_who_request_id_and_outcome(api, settings):
    settings.FACILITY_QUEUE_MODE = "manual"
    api.post(
        PUSH, {"AlgoFilePackageID": "a1", "Url": "http://127.0.0.1:9/a"}, **{"X-Request-ID": "r-1"}
    )
    api.post(PUSH, {"AlgoFilePackageID": "a1" * 30, "Url": "http://127.0.0.1:9/a"})
    api.post(SEARCH, {})  # a read: not audited
    records = list(AuditRecord.objects.order_by("id"))
    assert [(r.method, r.path, r.status, r.code) for r in records] == [
        ("POST", PUSH, 200, "0"),
        ("POST", PUSH, 400, "40000"),
    ]
    assert records[0].client == "platform:test"
    assert records[0].request_id == "r-1"
    assert "at most 40 characters" in records[1].message


def test_refused_calls_without_credential_are_audited_too(anonymous_api):
    anonymous_api.delete("/CAP/AlgoFilePackages/x")
    record = AuditRecord.objects.get()
    assert (record.client, record.status, record.code) == ("", 401, "40100")


def test_audit_csv_export(client, api, settings):
    settings.FACILITY_QUEUE_MODE = "manual"
    api.post(PUSH, {"AlgoFilePackageID": "c1", "Url": "http://127.0.0.1:9/c"})
    admin_user = get_user_model().objects.create_superuser("au", "a@example.org", "pw-au-12345")
    client.force_login(admin_user)
    ids = [str(pk) for pk in AuditRecord.objects.values_list("pk", flat=True)]
    response = client.post(
        "/admin/facility/auditrecord/",
        {"action": "export_csv", "_selected_action": ids},
    )
    assert response.status_code == 200
    lines = response.content.decode().splitlines()
    assert lines[0].startswith("at,client,method,path,status")
    assert "platform:test,POST,/CAP/AlgoFilePackages,200,0" in lines[1]


class _Platform(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.calls.append((self.path, body, self.headers.get("Authorization")))
        status = self.server.answers.get(self.path, 200)
        data = json.dumps({"Code": 0 if status == 200 else 1, "Message": "ok"}).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def platform(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Platform)
    server.calls, server.answers = [], {}
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.PLATFORM_URL = f"http://127.0.0.1:{server.server_address[1]}"
    settings.PLATFORM_TOKEN = "platform-secret"
    settings.FACILITY_ID = "facility-1"
    yield server
    server.shutdown()
    server.server_close()


def test_until_registered_task_and_service_interfaces_answer_503(api, platform):
    response = api.post("/CAP/AlgoTasks:search", {})
    assert response.status_code == 503
    assert response.body["Code"] == 50301
    assert "not registered" in response.body["Message"]
    assert api.post("/CAP/AlgoServices:search", {}).status_code == 503
    assert api.post(SEARCH, {}).status_code == 200  # packages are not gated

    assert registration.keep_registered() == "registered"
    path, body, auth = platform.calls[0]
    assert path == "/CAP/Register"
    assert body["DeviceID"] == "facility-1"
    assert body["Role"] == "CAP"
    assert auth == "Bearer platform-secret"
    assert api.post("/CAP/AlgoTasks:search", {}).status_code == 200


def test_refused_heartbeat_leads_to_registering_again(platform):
    assert registration.keep_registered() == "registered"
    assert registration.keep_registered() == "heartbeat"
    platform.answers["/CAP/Heartbeat"] = 404
    assert registration.keep_registered().startswith("failed")
    assert not registration.is_registered()
    assert PlatformRegistration.objects.get().last_error
    assert registration.keep_registered() == "registered"
    assert [call[0] for call in platform.calls] == [
        "/CAP/Register",
        "/CAP/Heartbeat",
        "/CAP/Heartbeat",
        "/CAP/Register",
    ]


def test_standalone_facility_counts_as_registered(api):
    assert registration.keep_registered() == "standalone"
    assert api.post("/CAP/AlgoTasks:search", {}).status_code == 200


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data", "http://[fe80::1]/p.tar", "http://0.0.0.0/x"]
)
def test_link_local_and_metadata_targets_are_refused(api, url):
    response = api.post(PUSH, {"AlgoFilePackageID": "m1", "Url": url})
    assert response.status_code == 400
    assert "Url: target not allowed" in response.body["Message"]


def test_allow_list_limits_downloads_at_connect_time(api, settings, file_server):
    settings.ALLOW_NETWORKS = ["10.0.0.0/8"]
    url = file_server.add("p.tar", b"not really a tar")
    api.post(PUSH, {"AlgoFilePackageID": "n1", "Url": url.replace("127.0.0.1", "localhost")})
    detail = api.get("/CAP/AlgoFilePackages/n1").body["Data"]
    assert detail["Status"] == 4
    assert "outside the allowed networks" in detail["StatusReason"]
    assert file_server.requests == []


def test_deliveries_to_metadata_addresses_are_refused_before_connecting():
    from tasks.sinks.http import HttpSink

    result = HttpSink().send("http://169.254.169.254/latest", {"EventKey": "k"}, "k" * 16)
    assert result.ok is False
    assert result.status is None
    assert "denied network 169.254.0.0/16" in result.error
