from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request
from rest_framework.response import Response

from compute import actions
from compute.api import serializers as s
from compute.probes import CardReading, Reading
from facility.api.schema import contract_schema
from facility.api.views import ContractView
from facility.errors import Invalid, NotFound
from facility.models import PlatformClient


class CadStatusView(ContractView):
    """表1: GET /CAD/Status"""

    @contract_schema(
        response=s.DeviceInfo,
        name="DeviceStatusResponse",
        summary="表1 this device's compute: totals, current use and trends (from stored samples)",
        operation_id="cad_status",
    )
    def get(self, request: Request) -> Response:
        return Response(s.device_info(actions.local_node_status()))


class CapStatusView(ContractView):
    """表27: GET /CAP/Status"""

    @contract_schema(
        response=s.CapStatus,
        name="CAPStatusResponse",
        summary="表27 every node's inventory (BasicInfo) and use (OpsInfo)",
        operation_id="cap_status",
    )
    def get(self, request: Request) -> Response:
        return Response(s.cap_status(actions.all_node_statuses()))


class ClusterMonitorView(ContractView):
    """表16: GET /CCP/Cluster/Monitors/<ClusterCode>"""

    code_type = str

    @contract_schema(
        response=s.ClusterMonitorInfo,
        code_type=str,
        name="ClusterMonitorResponse",
        summary="表16 a cluster's totals, use and trends; a body, if sent, is ignored",
    )
    def get(self, request: Request, ClusterCode: str) -> Response:
        # the local node registers itself (and its cluster) on first use
        actions.ensure_local_node()
        cluster = actions.get_cluster(ClusterCode)
        return Response(s.cluster_monitor_info(actions.cluster_status(cluster)))


class NodeMonitorView(ContractView):
    """表17: POST /CCP/Node/Monitors/<NodeID>"""

    code_type = str

    @contract_schema(
        request=s.NodeMonitorRequest,
        response=s.NodeMonitorInfo,
        code_type=str,
        name="NodeMonitorResponse",
        summary="表17 a node's totals, use and trends",
    )
    def post(self, request: Request, NodeID: str) -> Response:
        body = self.body(request, s.NodeMonitorRequest)
        actions.ensure_local_node()
        if body["NodeID"] and body["NodeID"] != NodeID:
            raise Invalid(
                _("differs from the NodeID in the URI (%(id)s)") % {"id": repr(NodeID)},
                field="NodeID",
            )
        node = actions.get_node(NodeID)
        if body["ClusterCode"] and body["ClusterCode"] != node.cluster.code:
            raise NotFound(
                _("node %(id)s is not in cluster %(cluster)s")
                % {"id": repr(NodeID), "cluster": repr(body["ClusterCode"])},
                field="ClusterCode",
            )
        return Response(s.node_monitor_info(actions.node_status(node)))


NODE_CONFLICT = {409: "a node of that name exists"}


class NodesView(ContractView):
    """Node REST API: GET and POST /api/compute/nodes"""

    @contract_schema(
        response=s.NodeRecord,
        many=True,
        name="NodeListResponse",
        summary="list the nodes (query parameter ClusterCode filters)",
        operation_id="compute_nodes_list",
        parameters=[OpenApiParameter("ClusterCode", str, required=False)],
        tags=["compute"],
    )
    def get(self, request: Request) -> Response:
        actions.ensure_local_node()
        nodes = actions.list_nodes(request.query_params.get("ClusterCode", ""))
        return Response(s.NodeRecord(nodes, many=True).data)

    @contract_schema(
        request=s.NodeCreateRequest,
        response=s.NodeRecord,
        name="NodeCreateResponse",
        summary="register a remote node; its agent then posts samples for it",
        extra_errors=NODE_CONFLICT,
        tags=["compute"],
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.NodeCreateRequest)
        agent_client = None
        if body["AgentClient"]:
            agent_client = PlatformClient.objects.filter(name=body["AgentClient"]).first()
            if agent_client is None:
                raise Invalid(_("no platform credential of that name"), field="AgentClient")
        node = actions.create_node(
            name=body["Name"],
            cluster_code=body["ClusterCode"] or settings.FACILITY_CLUSTER_CODE,
            ip=body["Ip"],
            hostname=body["HostName"],
            cpu_arch=body["CpuType"],
            os=body["OS"],
            cpu_cores=body["Cpu"],
            memory_gb=body["Memory"],
            disk_gb=body["Disk"],
            agent_client=agent_client,
        )
        return Response(s.NodeRecord(node).data)


class NodeView(ContractView):
    """Node REST API: GET and DELETE /api/compute/nodes/<NodeID>"""

    @contract_schema(
        response=s.NodeRecord, name="NodeDetailResponse", summary="one node", tags=["compute"]
    )
    def get(self, request: Request, NodeID: str) -> Response:
        return Response(s.NodeRecord(actions.get_node(NodeID)).data)

    @contract_schema(
        response=None,
        name="EmptyResponseCodeInteger",
        summary="delete a node with its cards and samples",
        tags=["compute"],
    )
    def delete(self, request: Request, NodeID: str) -> Response:
        actions.delete_node(NodeID)
        return Response(None)


class NodeSamplesView(ContractView):
    """Node REST API: POST /api/compute/nodes/<NodeID>/samples (the node agent)"""

    @contract_schema(
        request=s.NodeSampleRequest,
        response=None,
        name="EmptyResponseCodeInteger",
        summary="store one reading of a remote node (sent by `manage.py node_agent`)",
        extra_errors={
            403: "the node is bound to another credential",
            409: "the node is this facility's own (sampled in-process)",
        },
        tags=["compute"],
    )
    def post(self, request: Request, NodeID: str) -> Response:
        body = self.body(request, s.NodeSampleRequest)
        actions.record_agent_reading(NodeID, request.auth, reading_from(body), body["PeriodS"])
        return Response(None)


def reading_from(body: dict[str, Any]) -> Reading:
    inventory = body.get("Inventory") or {}
    return Reading(
        hostname=inventory.get("HostName") or None,
        ip=inventory.get("Ip") or None,
        cpu_arch=inventory.get("CpuType") or None,
        os=inventory.get("OS") or None,
        cpu_cores=inventory.get("Cpu") or None,
        memory_gb=inventory.get("Memory") or None,
        disk_gb=inventory.get("Disk") or None,
        cpu_utilization=body["CpuUtilization"],
        memory_used_gb=body["MemoryUsed"],
        disk_used_gb=body["DiskUsed"],
        cards=[
            CardReading(
                index=card["Index"],
                uuid=card["Uuid"],
                xpu_type=card["XpuType"],
                memory_gb=card["XpuMemory"],
                memory_used_gb=card["XpuMemoryUsed"],
                utilization=card["XpuUtilization"],
                processes=card["Processes"],
            )
            for card in body["Cards"]
        ],
        xpu_note=inventory.get("XpuNote", ""),
    )
