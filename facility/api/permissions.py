"""Who may call what: a platform client's scope decides whether it may
change anything (read-only clients may GET and `:search`)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from facility.models import ClientScope, PlatformClient

READ_METHODS = ("GET", "HEAD", "OPTIONS")


def is_read(request: Request) -> bool:
    return request.method in READ_METHODS or (
        request.method == "POST" and (request.path.endswith(":search") or _is_list_query(request))
    )


def _is_list_query(request: Request) -> bool:
    """The standard's POST lists and queries (表6, 表17, 表23–26)."""
    path = request.path
    if path.startswith(("/CCP/Node/Monitors/", "/CCP/AlgoService/Pods")):
        return True
    if path == "/CAD/Machine/AlgoPackages" or path == "/CCP/AlgoService/Workloads":
        data = request.data if isinstance(request.data, dict) else {}
        creating = any(k in data for k in ("AlgoFilePackageID", "Image", "ContainerName"))
        return not creating
    return path.startswith("/CCP/AlgoService/Workloads/") and not path.endswith(":delete")


class PlatformScopePermission(BasePermission):
    message = _("this credential is read-only")

    def has_permission(self, request: Request, view: Any) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        client = request.auth
        if isinstance(client, PlatformClient) and client.scope == ClientScope.READ:
            return is_read(request)
        return True
