from __future__ import annotations

from typing import Any, TypeVar

from django.http import HttpRequest
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.views import APIView

S = TypeVar("S", bound=serializers.Serializer)


class ContractView(APIView):
    """Base of every /CAD /CCP /CAP view. `code_type` is the JSON type of
    Code in this interface's table (int or str)."""

    code_type: type = int

    def initialize_request(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Request:
        # A body without a Content-Type is read as JSON (tolerant reader);
        # a declared non-JSON type still gets 415.
        if not request.META.get("CONTENT_TYPE") and request.META.get("CONTENT_LENGTH") not in (
            None,
            "",
            "0",
        ):
            request.META["CONTENT_TYPE"] = "application/json"
        return super().initialize_request(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        from facility.registration import check_registered

        check_registered(request.path)

    def body(self, request: Request, serializer_class: type[S], **context: Any) -> dict[str, Any]:
        """Validate the request body; a failure raises the 400 envelope."""
        serializer = serializer_class(data=request.data, context={"request": request, **context})
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)
