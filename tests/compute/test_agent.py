"""`manage.py node_agent` against a real HTTP server of the facility."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from compute.models import Node, ResourceSample
from tests.compute.helpers import make_node

pytestmark = [pytest.mark.usefixtures("compute_settings"), pytest.mark.django_db(transaction=True)]


def test_agent_posts_samples_with_its_credential(live_server, platform_token, monkeypatch) -> None:
    node = make_node(name="edge-1", ip="")
    monkeypatch.setenv("FACILITY_AGENT_TOKEN", platform_token)
    call_command(
        "node_agent",
        "--facility",
        live_server.url,
        "--node",
        "edge-1",
        "--interval",
        "0.05",
        "--count",
        "2",
    )
    node.refresh_from_db()
    assert ResourceSample.objects.filter(node=node, card__isnull=True).count() == 2
    assert node.is_online and node.cpu_cores > 0 and node.ip


def test_agent_with_a_bad_credential_stops_at_once(live_server, monkeypatch) -> None:
    make_node(name="edge-1")
    monkeypatch.setenv("FACILITY_AGENT_TOKEN", "fac_wrong")
    with pytest.raises(CommandError, match="401"):
        call_command(
            "node_agent", "--facility", live_server.url, "--node", "edge-1", "--count", "1"
        )
    assert not ResourceSample.objects.exists()
    assert Node.objects.get(name="edge-1").last_seen_at is None


def test_agent_needs_its_settings(monkeypatch) -> None:
    monkeypatch.delenv("FACILITY_AGENT_TOKEN", raising=False)
    with pytest.raises(CommandError, match="FACILITY_AGENT_TOKEN"):
        call_command("node_agent", "--facility", "http://127.0.0.1:1", "--node", "x")
