from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from algorithms.actions import get_package
from facility.api.schema import contract_schema
from facility.api.serializers import page_of, paged_response_serializer
from facility.api.views import ContractView
from services import actions
from services.api import serializers as s

CONFLICT = {409: "the package is not complete, or resources are missing"}


class CapServicesView(ContractView):
    """表33: POST /CAP/AlgoServices"""

    @contract_schema(
        request=s.AlgoServiceCreateRequest,
        response=s.AlgoServiceCreateResult,
        name="AlgoServiceCreateResponse",
        summary="表33 load an algorithm service (replicas start in the background)",
        extra_errors=CONFLICT,
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.AlgoServiceCreateRequest)
        service = actions.create_service(
            package_id=body["AlgoFilePackageID"],
            replicas=body["Replicas"],
            xpu_type=body["XpuType"],
            env=[dict(item) for item in body["Env"]],
            host_name=body["HostName"],
        )
        return Response({"AlgoServiceID": service.service_id})


class CapServiceSearchView(ContractView):
    """表35: POST /CAP/AlgoServices:search"""

    @contract_schema(
        request=s.AlgoServiceSearchRequest,
        response=paged_response_serializer("AlgoServiceSearchPage", s.AlgoServiceRecord),
        name="AlgoServiceSearchResponse",
        summary="表35 search algorithm services, paged",
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.AlgoServiceSearchRequest)
        queryset = actions.search_services(body["AlgoFilePackageID"], body["XpuType"])
        return Response(
            page_of(queryset, body["PageNumber"], body["PageSize"], s.AlgoServiceRecord)
        )


class CapServiceView(ContractView):
    """表36 GET and 表34 DELETE /CAP/AlgoServices/<AlgoServiceID>"""

    @contract_schema(
        response=s.AlgoServiceDetail,
        name="AlgoServiceDetailResponse",
        summary="表36 algorithm service detail",
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(s.AlgoServiceDetail(actions.get_service(id)).data)

    @contract_schema(
        response=None,
        name="EmptyResponseCodeInteger",
        summary="表34 unload an algorithm service (replicas stop in the background)",
    )
    def delete(self, request: Request, id: str) -> Response:
        actions.delete_service(id)
        return Response(None)


class CadMachinePackagesView(ContractView):
    """表4 install and 表6 list share POST /CAD/Machine/AlgoPackages: a body
    with AlgoFilePackageID installs, one without lists (INTERFACES.md)."""

    code_type = str

    @contract_schema(
        request=s.AlgoPackageInstallOrListRequest,
        response=s.MachineAlgoPackage,
        code_type=str,
        name="AlgoPackageListResponse",
        many=True,
        summary="表4 install (run) a package on this device, or 表6 list its packages",
        description=(
            "With AlgoFilePackageID: 表4, install = run; Data is omitted. Without it: 表6, "
            "Data is the list of MachineAlgoPackage."
        ),
        extra_errors=CONFLICT,
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.AlgoPackageInstallOrListRequest)
        if body["AlgoFilePackageID"]:
            actions.install_on_device(body["AlgoFilePackageID"], body["Args"])
            return Response(None)
        rows = actions.device_packages(body.get("Status", ""))
        return Response([s.machine_package(package, service) for package, service in rows])


class CadMachinePackageView(ContractView):
    """表7 GET and 表5 DELETE /CAD/Machine/AlgoPackages/<AlgoFilePackageID>"""

    code_type = str

    @contract_schema(
        response=s.MachineAlgoPackage,
        code_type=str,
        name="AlgoPackageDetailResponse",
        summary="表7 a package on this device",
    )
    def get(self, request: Request, id: str) -> Response:
        package = get_package(id)
        return Response(s.machine_package(package, actions.machine_service(id)))

    @contract_schema(
        response=None,
        code_type=str,
        name="EmptyResponseCodeString",
        summary="表5 uninstall (stop) a package on this device; repeating it succeeds",
    )
    def delete(self, request: Request, id: str, **_: Any) -> Response:
        actions.uninstall_from_device(id)
        return Response(None)
