"""/CCP interfaces 表18–26 (Code is a String in these tables)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer
from rest_framework.request import Request
from rest_framework.response import Response

from ccp import actions
from ccp.api import serializers as s
from facility.api.envelope import make_envelope
from facility.api.middleware import request_id_of
from facility.api.schema import contract_schema
from facility.api.views import ContractView

CONFLICT = {409: "the engine is used by a workload, or the workload exists already"}
UNAVAILABLE = {503: "the backend (Docker engine, Kubernetes API) cannot be reached"}


class CcpView(ContractView):
    code_type = str

    def message(self, text: str) -> Response:
        """An EmptyResponse whose Message says what was done."""
        rid = request_id_of(self.request._request)
        response = Response(make_envelope(0, text[:1024], rid, str))
        response.is_envelope = True  # type: ignore[attr-defined]
        return response


def _creates(data: Any) -> bool:
    """表20 vs 表23 (INTERFACES.md Decision): a body with Image or ContainerName creates."""
    if not isinstance(data, Mapping):
        return False
    keys = {key.strip().lower() for key in data if isinstance(key, str)}
    return bool(keys & {"image", "containername"})


class EnginesView(CcpView):
    """表18: POST /CCP/AlgoService/Engines"""

    @contract_schema(
        request=s.EngineRequest,
        response=None,
        code_type=str,
        name="EmptyResponseCodeString",
        summary="表18 push an algorithm engine (an image, or a package holding one); "
        "it is loaded in the background",
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.EngineRequest)
        actions.push_engine(
            body["AlgoFilePackageID"], body["Url"], body["FileType"], body["AuthAddress"]
        )
        return Response(None)


class EngineView(CcpView):
    """表19: DELETE /CCP/AlgoService/Engines/<AlgoFilePackageID>"""

    @contract_schema(
        response=None,
        code_type=str,
        name="EmptyResponseCodeString",
        summary="表19 delete an engine and its image; refused while a workload uses it",
        description="Message says what was removed.",
        extra_errors={**CONFLICT, **UNAVAILABLE},
    )
    def delete(self, request: Request, id: str) -> Response:
        return self.message(actions.delete_engine(id))


CREATE_OR_LIST = PolymorphicProxySerializer(
    component_name="WorkloadCreateOrListRequest",
    serializers=[s.WorkloadCreateRequest, s.ListRequest],
    resource_type_field_name=None,
)


class WorkloadsView(CcpView):
    """表20 create and 表23 list share POST /CCP/AlgoService/Workloads."""

    @contract_schema(
        request=CREATE_OR_LIST,  # type: ignore[arg-type]
        response=s.WorkloadCreateOrListData,
        code_type=str,
        name="WorkloadCreateOrListResponse",
        summary="表20 create a workload (body with Image or ContainerName) or 表23 list them",
        description="With Image or ContainerName: 表20, Data = WorkloadResult. Otherwise: "
        "表23, Data = {PAgeRequest, PageContent, TotalSize}.",
        extra_errors={**CONFLICT, **UNAVAILABLE},
    )
    def post(self, request: Request) -> Response:
        if _creates(request.data):
            body = self.body(request, s.WorkloadCreateRequest)
            workload = actions.create_workload(body)
            return Response(s.WorkloadResult(workload).data)
        body = self.body(request, s.ListRequest)
        page = body.get("PAgeRequest") or {"PageNumber": 1, "PageSize": 20, "OrderList": []}
        order = [dict(item) for item in page.get("OrderList", [])]
        queryset = actions.list_workloads(body["Namespace"], body["WorkloadName"], order)
        start = (page["PageNumber"] - 1) * page["PageSize"]
        rows = queryset[start : start + page["PageSize"]]
        return Response(
            {
                "PAgeRequest": {
                    "PageNumber": page["PageNumber"],
                    "PageSize": page["PageSize"],
                    "OrderList": order,
                },
                "PageContent": s.WorkloadInfo(rows, many=True).data,
                "TotalSize": queryset.count(),
            }
        )


def _name(body: dict[str, Any], uri_name: str) -> str:
    return uri_name or body["WorkloadName"]


QUERY_PARAMS = [
    OpenApiParameter("ClusterCode", str, required=False),
    OpenApiParameter("Namespace", str, required=False),
]


class WorkloadView(CcpView):
    """表24 detail (POST), 表22 scale (PUT), 表21 delete (DELETE; see WorkloadDeleteView)"""

    @contract_schema(
        request=s.WorkloadRequest,
        response=s.WorkloadDetail,
        code_type=str,
        name="WorkloadDetailResponse",
        summary="表24 workload detail",
        extra_errors=UNAVAILABLE,
    )
    def post(self, request: Request, name: str) -> Response:
        body = self.body(request, s.WorkloadRequest)
        workload = actions.get_workload(body["Namespace"], name)
        status = actions.workload_status(workload)
        return Response(s.WorkloadDetail(workload, context={"status": status}).data)

    @contract_schema(
        request=s.WorkloadScaleRequest,
        response=None,
        code_type=str,
        name="EmptyResponseCodeString",
        summary="表22 scale a workload (pods start or stop in the background)",
    )
    def put(self, request: Request, name: str) -> Response:
        body = self.body(request, s.WorkloadScaleRequest)
        actions.scale_workload(body["Namespace"], name, body["Replicas"])
        return Response(None)

    @contract_schema(
        request=s.WorkloadRequest,
        response=None,
        code_type=str,
        name="EmptyResponseCodeString",
        parameters=QUERY_PARAMS,
        summary="表21 delete a workload and its pods (the project's URI, see the Decision)",
        description="The 表G.4 body, or its fields as query parameters. Message names the "
        "pods removed.",
        extra_errors=UNAVAILABLE,
    )
    def delete(self, request: Request, name: str) -> Response:
        return self.message(self._delete(request, name))

    def _delete(self, request: Request, name: str) -> str:
        data = request.data if isinstance(request.data, Mapping) and request.data else None
        if data is None:
            data = {k: v for k, v in request.query_params.items()}
        serializer = s.WorkloadRequest(data=data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        return actions.delete_workload(serializer.validated_data["Namespace"], name)


class WorkloadDeleteView(WorkloadView):
    """表21 for clients that can only POST: POST …/Workloads/<name>:delete"""

    http_method_names = ["post", "options"]

    @contract_schema(
        request=s.WorkloadRequest,
        response=None,
        code_type=str,
        name="EmptyResponseCodeString",
        summary="表21 delete a workload and its pods (POST form)",
        extra_errors=UNAVAILABLE,
    )
    def post(self, request: Request, name: str) -> Response:
        return self.message(self._delete(request, name))


class PodsView(CcpView):
    """表25: POST /CCP/AlgoService/Pods"""

    @contract_schema(
        request=s.PodListRequest,
        response=s.PodList,
        code_type=str,
        name="PodListResponse",
        summary="表25 AlgoServiceListResponse: the pods (service instances) of a workload",
        extra_errors=UNAVAILABLE,
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.PodListRequest)
        pods = actions.pods_of(body["Namespace"], body["WorkloadName"])
        return Response({"Pods": [s.pod_vo(pod) for pod in pods]})


class PodView(CcpView):
    """表26: POST /CCP/AlgoService/Pods/<PodName>"""

    @contract_schema(
        request=s.PodDetailRequest,
        response=s.PodVO,
        code_type=str,
        name="PodDetailResponse",
        summary="表26 AlgoServiceDetailResponse: one pod of a workload",
        extra_errors=UNAVAILABLE,
    )
    def post(self, request: Request, name: str) -> Response:
        body = self.body(request, s.PodDetailRequest)
        pod = actions.pod_of(body["Namespace"], body["WorkloadName"], name)
        return Response(s.pod_vo(pod))
