from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from facility.api.fields import EnumField, text
from facility.api.schema import contract_schema
from facility.api.serializers import ContractSerializer as ContractSerializerBase
from facility.api.serializers import page_of, paged_response_serializer
from facility.api.views import ContractView
from facility.errors import FacilityError
from facility.errors import Invalid as FacilityInvalid
from services.engine import check_engine_token
from tasks import actions, events
from tasks.api import serializers as s
from tasks.models import Delivery

CONFLICT = {409: "the task's state forbids this (e.g. updating a running NEVER task)"}


class _Scoped(ContractView):
    scope = "cap"


class TasksView(_Scoped):
    """表37: POST /CAP/AlgoTasks (表8 on /CAD)"""

    @contract_schema(
        request=s.AlgoTaskCreateRequest,
        response=s.AlgoTaskInfoResult,
        name="AlgoTaskCreateResponse",
        summary="表37 create an analysis task (scheduled automatically or on AlgoServiceID)",
        extra_errors=CONFLICT,
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.AlgoTaskCreateRequest)
        task = actions.create_task(
            restart_policy=body["RestartPolicy"],
            task_info=_plain(body["TaskInfo"]),
            create_and_start=body["CreateAndStartTask"],
            service_id=body["AlgoServiceID"],
            scope=self.scope,
        )
        return Response(s.AlgoTaskInfoResult(task).data)


class TaskSearchView(_Scoped):
    """表42: POST /CAP/AlgoTasks:search"""

    @contract_schema(
        request=s.AlgoTaskSearchRequest,
        response=paged_response_serializer("AlgoTaskSearchPage", s.AlgoTaskInfoResult),
        name="AlgoTaskSearchResponse",
        summary="表42 search tasks by EventID, Status, RestartPolicy, CreateAndStartTask",
    )
    def post(self, request: Request) -> Response:
        body = self.body(request, s.AlgoTaskSearchRequest)
        filters = {
            "scope": self.scope,
            "event_id": body["EventID"],
            "status": body.get("Status", ""),
            "restart_policy": body.get("RestartPolicy", ""),
            "create_and_start": body["CreateAndStartTask"],
        }
        # AlgoServiceID is the task's own service_id column: no join needed
        queryset = actions.search_tasks(**filters)
        total = actions.count_search(queryset, **filters)
        return Response(
            page_of(queryset, body["PageNumber"], body["PageSize"], s.AlgoTaskInfoResult, total)
        )


class TaskView(_Scoped):
    """表43 GET, 表38 PUT, 表39 DELETE /CAP/AlgoTasks/<ID>"""

    @contract_schema(
        response=s.AlgoTaskInfoResult, name="AlgoTaskDetailResponse", summary="表43 task detail"
    )
    def get(self, request: Request, id: str) -> Response:
        return Response(s.AlgoTaskInfoResult(actions.get_task(id, self.scope)).data)

    @contract_schema(
        request=s.AlgoTaskUpdateRequest,
        response=s.AlgoTaskInfoResult,
        name="AlgoTaskUpdateResponse",
        summary="表38 update a task (a NEVER task only while PAUSED)",
        extra_errors=CONFLICT,
    )
    def put(self, request: Request, id: str) -> Response:
        body = self.body(request, s.AlgoTaskUpdateRequest)
        task = actions.update_task(
            id,
            restart_policy=body["RestartPolicy"],
            task_info=_plain(body["TaskInfo"]),
            service_id=body["AlgoServiceID"],
            scope=self.scope,
        )
        return Response(s.AlgoTaskInfoResult(task).data)

    @contract_schema(
        response=None,
        name="EmptyResponseCodeInteger",
        summary="表39 delete a task; repeating it succeeds",
    )
    def delete(self, request: Request, id: str) -> Response:
        actions.delete_task(id, self.scope)
        return Response(None)


class TaskResumeView(_Scoped):
    """表40: POST /CAP/AlgoTasks/<ID>:resume"""

    @contract_schema(
        response=None, name="EmptyResponseCodeInteger", summary="表40 start or resume a task"
    )
    def post(self, request: Request, id: str) -> Response:
        actions.resume_task(id, self.scope)
        return Response(None)


class TaskPauseView(_Scoped):
    """表41: POST /CAP/AlgoTasks/<ID>:pause"""

    @contract_schema(
        response=None,
        name="EmptyResponseCodeInteger",
        summary="表41 pause a task (frees its stream)",
        extra_errors=CONFLICT,
    )
    def post(self, request: Request, id: str) -> Response:
        actions.pause_task(id, self.scope)
        return Response(None)


class CadTasksView(TasksView):
    scope = "cad"


class CadTaskSearchView(TaskSearchView):
    scope = "cad"


class CadTaskView(TaskView):
    scope = "cad"


class CadTaskResumeView(TaskResumeView):
    scope = "cad"


class CadTaskPauseView(TaskPauseView):
    scope = "cad"


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


class EngineEventAccepted(serializers.Serializer):
    EventKey = serializers.CharField()
    Deliveries = serializers.IntegerField()


class EngineEventIntakeView(ContractView):
    """Engines post their events here (docs/engine-interface.md), with the
    replica's EVENT_SINK_TOKEN; not part of the standard."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @contract_schema(
        request=None,
        response=EngineEventAccepted,
        name="EngineEventResponse",
        summary="intake of engine events (facility-internal)",
    )
    @extend_schema(tags=["internal"])
    def post(self, request: Request) -> Response:
        document = request.data
        if not isinstance(document, dict):
            raise FacilityError("must be a JSON object")
        header = request.META.get("HTTP_AUTHORIZATION", "")
        token = header.partition(" ")[2].strip() if header.lower().startswith("bearer ") else ""
        if not check_engine_token(str(document.get("EngineID", "")), token):
            from rest_framework.exceptions import NotAuthenticated

            raise NotAuthenticated("engine credential missing or wrong for this EngineID")
        event, _ = events.accept_event(document)
        return Response({"EventKey": event.event_key, "Deliveries": event.deliveries.count()})


class ReplayRequest(ContractSerializerBase):
    EventKey = text(64, required=False, default="")
    State = EnumField(["dead", "pending", "delivered"], required=False)


class ReplayResult(serializers.Serializer):
    Replayed = serializers.IntegerField()


class DeliveryReplayView(ContractView):
    """POST /api/deliveries:replay — send events again: one (EventKey) or all
    in a State (e.g. every dead letter). Not part of the standard."""

    @contract_schema(
        request=ReplayRequest,
        response=ReplayResult,
        name="DeliveryReplayResponse",
        summary="replay result deliveries (facility extension)",
    )
    @extend_schema(tags=["deliveries"])
    def post(self, request: Request) -> Response:
        body = self.body(request, ReplayRequest)
        if not body["EventKey"] and not body.get("State"):
            raise FacilityInvalid("name an EventKey or a State", field="EventKey")
        ids = None
        if body.get("State"):
            ids = list(Delivery.objects.filter(state=body["State"]).values_list("pk", flat=True))
        return Response({"Replayed": events.replay(ids, event_key=body["EventKey"])})
