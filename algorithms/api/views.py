from __future__ import annotations

from typing import Any

from rest_framework.request import Request
from rest_framework.response import Response

from algorithms import actions
from algorithms.api import serializers as s
from algorithms.choices import PushSource
from facility.api.schema import contract_schema
from facility.api.serializers import page_of, paged_response_serializer
from facility.api.views import ContractView

CONFLICT = {409: "the package exists with a different Url/MD5, or its state forbids this"}


class CapPackagesView(ContractView):
    """表28: POST /CAP/AlgoFilePackages"""

    @contract_schema(
        request=s.AlgoFilePackagePushRequest,
        response=s.AlgoFilePackagePushResult,
        name="AlgoFilePackagePushResponse",
        summary="表28 push an algorithm package (downloaded in the background)",
        extra_errors=CONFLICT,
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.AlgoFilePackagePushRequest)
        package, _ = actions.push_package(
            package_id=body["AlgoFilePackageID"],
            url=body["Url"],
            md5=body["MD5"],
            name=body["Name"],
            source=PushSource.CAP,
        )
        return Response({"AlgoFilePackageID": package.package_id})


class CapPackageSearchView(ContractView):
    """表30: POST /CAP/AlgoFilePackages:search"""

    @contract_schema(
        request=s.AlgoFilePackageSearchRequest,
        response=paged_response_serializer(
            "AlgoFilePackageSearchPage", s.AlgoFilePackageSearchRecord
        ),
        name="AlgoFilePackageSearchResponse",
        summary="表30 search algorithm packages by Name, paged",
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.AlgoFilePackageSearchRequest)
        queryset = actions.search_packages(body["Name"])
        return Response(
            page_of(queryset, body["PageNumber"], body["PageSize"], s.AlgoFilePackageSearchRecord)
        )


class CapPackageExecFileView(ContractView):
    """表32: POST /CAP/AlgoFilePackages:pushExecFile"""

    @contract_schema(
        request=s.AlgoFilePackageExecFilePushRequest,
        response=s.AlgoFilePackagePushResult,
        name="AlgoFilePackageExecFilePushResponse",
        summary="表32 push the executable (image or artifact) of a package",
        extra_errors=CONFLICT,
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.AlgoFilePackageExecFilePushRequest)
        exec_file, _ = actions.push_exec_file(
            package_id=body["AlgoFilePackageID"],
            kind=body["Type"],
            url=body["Url"],
            md5=body["MD5"],
            name=body["Name"],
        )
        return Response({"AlgoFilePackageID": exec_file.package_id})


class CapPackageView(ContractView):
    """表31 GET and 表29 DELETE /CAP/AlgoFilePackages/<AlgoFilePackageID>"""

    @contract_schema(
        response=s.AlgoFilePackageDetail,
        name="AlgoFilePackageDetailResponse",
        summary="表31 package detail",
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(s.AlgoFilePackageDetail(actions.get_package(id)).data)

    @contract_schema(
        response=None,
        name="EmptyResponseCodeInteger",
        summary="表29 delete a package (rows and files); repeating it succeeds",
    )
    def delete(self, request: Request, id: str) -> Response:
        actions.delete_package(id)
        return Response(None)


class CadPackagesView(ContractView):
    """表2: POST /CAD/Machine/AlgoFilePackages"""

    code_type = str

    @contract_schema(
        request=s.AlgoFilePackageRequest,
        response=None,
        code_type=str,
        name="EmptyResponseCodeString",
        summary="表2 push an algorithm package to this device",
        extra_errors=CONFLICT,
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.AlgoFilePackageRequest)
        actions.push_package(
            package_id=body["AlgoFilePackageID"],
            url=body["Url"],
            source=PushSource.CAD,
            auth_address=body["AuthAddress"],
            license_file=body["LicenseFile"],
        )
        return Response(None)


class CadPackageView(ContractView):
    """表3: DELETE /CAD/Machine/AlgoFilePackages/<AlgoFilePackageID>"""

    code_type = str

    @contract_schema(
        response=None,
        code_type=str,
        name="EmptyResponseCodeString",
        summary="表3 delete a package from this device; repeating it succeeds",
    )
    def delete(self, request: Request, id: str, **_: Any) -> Response:
        actions.delete_package(id)
        return Response(None)
