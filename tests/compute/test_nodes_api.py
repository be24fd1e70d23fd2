from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from compute.models import Node, ResourceSample
from facility.models import PlatformClient
from tests.compute.helpers import make_node

pytestmark = pytest.mark.usefixtures("compute_settings")

SAMPLE = {
    "Inventory": {
        "HostName": "edge-1.example",
        "Ip": "127.0.0.9",
        "CpuType": "arm",
        "OS": "ubuntu 22.04",
        "Cpu": 16,
        "Memory": 64.0,
        "Disk": 1000.0,
    },
    "CpuUtilization": 0.5,
    "MemoryUsed": 20.0,
    "DiskUsed": 300.0,
    "PeriodS": 10,
    "Cards": [
        {
            "Index": 0,
            "Uuid": "GPU-x",
            "XpuType": "NVIDIA_A2",
            "XpuMemory": 15.0,
            "XpuMemoryUsed": 3.0,
            "XpuUtilization": 0.75,
            "Processes": [{"Pid": 42, "MemoryUsedGB": 3.0}],
        }
    ],
}


def credential(name: str) -> tuple[PlatformClient, str]:
    user = get_user_model().objects.create(username=f"platform:{name}")
    client = PlatformClient(name=name, user=user)
    token = PlatformClient.new_token()
    client.set_token(token)
    client.save()
    return client, token


def test_nodes_are_created_listed_read_and_deleted(api) -> None:
    created = api.post(
        "/api/compute/nodes",
        {"Name": "edge-1", "ClusterCode": "c9", "Ip": "127.0.0.5", "Cpu": 4, "Memory": 8},
    )
    assert created.status_code == 200, created.body
    record = created.body["Data"]
    assert record["Name"] == "edge-1" and record["ClusterCode"] == "c9"
    assert record["IsOnline"] is False and record["Cards"] == [] and record["LastSeen"] == ""

    listed = api.get("/api/compute/nodes").body["Data"]
    assert {n["Name"] for n in listed} >= {"edge-1"}
    assert any(n["IsLocal"] for n in listed)  # the facility's own node
    assert [n["Name"] for n in api.get("/api/compute/nodes?ClusterCode=c9").body["Data"]] == [
        "edge-1"
    ]
    assert api.get(f"/api/compute/nodes/{record['ID']}").body["Data"]["Ip"] == "127.0.0.5"
    assert api.get("/api/compute/nodes/edge-1").body["Data"]["ID"] == record["ID"]

    assert api.delete("/api/compute/nodes/edge-1").status_code == 200
    assert api.get("/api/compute/nodes/edge-1").status_code == 404
    assert api.delete("/api/compute/nodes/edge-1").status_code == 404


def test_node_names_are_unique_and_not_all_digits(api) -> None:
    assert api.post("/api/compute/nodes", {"Name": "edge-1"}).status_code == 200
    duplicate = api.post("/api/compute/nodes", {"Name": "edge-1"})
    assert duplicate.status_code == 409 and duplicate.body["Code"] == 40900
    digits = api.post("/api/compute/nodes", {"Name": "123"})
    assert digits.status_code == 400 and "Name" in digits.body["Message"]
    missing = api.post("/api/compute/nodes", {})
    assert missing.status_code == 400 and "Name: is required" in missing.body["Message"]


def test_agent_sample_updates_the_node_and_its_monitor(api) -> None:
    node = make_node()
    response = api.post(f"/api/compute/nodes/{node.pk}/samples", SAMPLE)
    assert response.status_code == 200, response.body

    node.refresh_from_db()
    assert (node.cpu_arch, node.cpu_cores, node.ip, node.os) == (
        "arm",
        16,
        "127.0.0.9",
        "ubuntu 22.04",
    )
    assert node.is_online
    data = api.post(f"/CCP/Node/Monitors/{node.pk}", {}).body["Data"]
    assert data["CpuUtilization"] == 0.5 and data["MemoryUsed"] == 20 and data["CpuType"] == "arm"
    assert data["XpuMonitors"][0]["XpuType"] == "NVIDIA_A2"
    assert data["XpuMonitors"][0]["XpuUtilization"] == 0.75
    card_row = ResourceSample.objects.get(node=node, card__isnull=False)
    assert card_row.processes == [{"Pid": 42, "MemoryUsedGB": 3.0}]


def test_agent_sample_with_out_of_range_values_is_refused(api) -> None:
    node = make_node()
    response = api.post(f"/api/compute/nodes/{node.pk}/samples", {**SAMPLE, "CpuUtilization": 7})
    assert response.status_code == 400 and "CpuUtilization" in response.body["Message"]


def test_agent_with_a_bad_credential_is_refused(api, anonymous_api) -> None:
    node = make_node()
    anonymous_api.token = "fac_not-a-real-token"
    response = anonymous_api.post(f"/api/compute/nodes/{node.pk}/samples", SAMPLE)
    assert response.status_code == 401 and response.body["Code"] == 40100
    anonymous_api.token = None
    assert anonymous_api.post(f"/api/compute/nodes/{node.pk}/samples", SAMPLE).status_code == 401
    assert not ResourceSample.objects.filter(node=node).exists()


def test_a_node_bound_to_a_credential_refuses_others(api) -> None:
    owner, owner_token = credential("agent-edge-1")
    created = api.post("/api/compute/nodes", {"Name": "edge-1", "AgentClient": owner.name})
    node_id = created.body["Data"]["ID"]
    assert created.body["Data"]["AgentClient"] == "agent-edge-1"

    refused = api.post(f"/api/compute/nodes/{node_id}/samples", SAMPLE)
    assert refused.status_code == 403

    api.token = owner_token
    assert api.post(f"/api/compute/nodes/{node_id}/samples", SAMPLE).status_code == 200


def test_samples_for_the_local_node_come_from_its_sampler_only(api) -> None:
    local = api.get("/api/compute/nodes").body["Data"][0]
    assert local["IsLocal"]
    response = api.post(f"/api/compute/nodes/{local['ID']}/samples", SAMPLE)
    assert response.status_code == 409


def test_samples_for_an_unknown_node_are_a_404(api) -> None:
    assert api.post("/api/compute/nodes/nope/samples", SAMPLE).status_code == 404
    assert not Node.objects.filter(name="nope").exists()
