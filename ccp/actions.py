"""What the /CCP interfaces do, apart from HTTP: the views call these; the
background work is in ccp.jobs."""

from __future__ import annotations

import re
import shlex
import shutil
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _

from ccp import conf
from ccp.backends import get_backend
from ccp.backends.base import BackendError, Pod, WorkloadSpec
from ccp.choices import EngineState, FileType
from ccp.models import Engine, Workload
from ccp.names import MAX_WORKLOAD_NAME, label_key_problem, label_problem, label_value_problem
from facility.errors import Conflict, Invalid, NotFound, Unavailable
from facility.queue import enqueue

# registry[:port]/path/name[:tag][@sha256:...], lower-case path components
_REFERENCE = re.compile(
    r"^(?:(?P<host>[A-Za-z0-9.-]+(?::\d+)?)/)?"
    r"[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_HOST_PORT = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


def is_url(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def registry_of(reference: str) -> str:
    """The registry host of an image reference ('' = Docker Hub)."""
    first, _, rest = reference.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first
    return ""


def split_command(text: str, field: str) -> list[str]:
    try:
        return shlex.split(text)
    except ValueError as error:
        raise Invalid(
            _("cannot be split into words: %(error)s") % {"error": error}, field=field
        ) from None


# -- engines (表18, 表19) ----------------------------------------------------------


def push_engine(package_id: str, url: str, file_type: str, auth_address: str) -> Engine:
    if file_type == FileType.FILE_PACKAGE and not is_url(url):
        raise Invalid(
            _("a FilePackage is downloaded: give an http:// or https:// address"), field="Url"
        )
    if file_type == FileType.ENGINE and not is_url(url) and not _REFERENCE.match(url):
        raise Invalid(
            _(
                "give an image reference (e.g. 127.0.0.1:5000/provider-human_detect:1.3.0) "
                "or an http(s):// address of a `docker save` tar"
            ),
            field="Url",
        )
    for part in filter(None, (p.strip() for p in auth_address.split(","))):
        if not _HOST_PORT.match(part):
            raise Invalid(_("%(part)s is not Ip:Port") % {"part": repr(part)}, field="AuthAddress")
    with transaction.atomic():
        engine, created = Engine.objects.select_for_update().get_or_create(
            package_id=package_id,
            defaults={"file_type": file_type, "url": url, "auth_address": auth_address},
        )
        if not created:
            engine.file_type, engine.url, engine.auth_address = file_type, url, auth_address
            engine.generation += 1
        engine.state, engine.reason = EngineState.PENDING, ""
        engine.save()
        enqueue("ccp.jobs.load_engine", engine.package_id, engine.generation)
    return engine


def delete_engine(package_id: str) -> str:
    """Removes the engine; the message says what was removed."""
    engine = Engine.objects.filter(package_id=package_id).first()
    if engine is None:
        raise NotFound(_("no engine with AlgoFilePackageID %(id)s") % {"id": package_id})
    if engine.image:
        users = list(Workload.objects.filter(image=engine.image).values_list("namespace", "name"))
        if users:
            names = ", ".join(f"{ns}/{name}" for ns, name in users)
            raise Conflict(
                _("engine image %(image)s is used by workload(s) %(names)s: delete them first")
                % {"image": engine.image, "names": names}
            )
    removed = [_("engine %(id)s") % {"id": package_id}]
    shared = Engine.objects.filter(image=engine.image).exclude(pk=package_id).exists()
    if engine.image and not shared:
        try:
            if get_backend().remove_image(engine.image):
                removed.append(_("image %(image)s") % {"image": engine.image})
        except BackendError as error:
            raise Unavailable(
                _("could not remove image %(image)s: %(error)s")
                % {"image": engine.image, "error": error}
            ) from None
    store = conf.engine_store() / package_id
    if store.exists():
        if any(path.is_file() for path in store.rglob("*")):
            removed.append(_("its downloaded files"))
        shutil.rmtree(store, ignore_errors=True)
    engine.delete()
    return _("removed %(what)s") % {"what": ", ".join(removed)}


# -- workloads (表20–24) -----------------------------------------------------------


def _check_labels(labels: dict[str, Any], field: str) -> dict[str, str]:
    result = {}
    for key, value in labels.items():
        if not isinstance(value, str):
            raise Invalid(
                _("the value of %(key)s must be a string") % {"key": repr(key)}, field=field
            )
        problem = label_key_problem(key) or label_value_problem(value)
        if problem:
            raise Invalid(problem, field=field)
        result[key] = value
    return result


def check_name(value: str, field: str, max_length: int = 63) -> str:
    problem = label_problem(value, max_length)
    if problem:
        raise Invalid(
            _("%(value)s %(problem)s") % {"value": repr(value), "problem": problem}, field=field
        )
    return value


def create_workload(body: dict[str, Any]) -> Workload:
    namespace = check_name(body["Namespace"], "Namespace")
    name = check_name(body["Name"], "Name", MAX_WORKLOAD_NAME)
    container_name = check_name(body["ContainerName"], "ContainerName")
    labels = _check_labels(body["Labels"], "Labels")
    selector = _check_labels(body["LabelSelector"], "LabelSelector")
    missing = {k: v for k, v in selector.items() if labels.get(k) != v}
    if missing:
        raise Invalid(
            _("selects %(missing)s but the Labels do not carry them: the pods would not match")
            % {"missing": missing},
            field="LabelSelector",
        )
    split_command(body["Command"], "Command")
    split_command(body["Args"], "Args")
    if round(body["Xpu"], 1) != body["Xpu"]:
        raise Invalid(_("at most one decimal (e.g. 0.5)"), field="Xpu")
    with transaction.atomic():
        if Workload.objects.filter(namespace=namespace, name=name).exists():
            raise Conflict(
                _("workload %(name)s already exists in namespace %(namespace)s")
                % {"name": name, "namespace": namespace}
            )
        workload = Workload.objects.create(
            namespace=namespace,
            name=name,
            cluster_code=body["ClusterCode"],
            labels=labels,
            label_selector=selector,
            replicas=body["Replicas"],
            container_name=container_name,
            image=body["Image"],
            cpu=body["Cpu"],
            xpu_type=body["XpuType"],
            xpu=body["Xpu"],
            memory=body["Memory"],
            command=body["Command"],
            args=body["Args"],
            backend=conf.backend_name(),
        )
        enqueue("ccp.jobs.apply_workload", workload.pk)
    return workload


def get_workload(namespace: str, name: str) -> Workload:
    workload = Workload.objects.filter(namespace=namespace or "default", name=name).first()
    if workload is None:
        raise NotFound(
            _("no workload %(name)s in namespace %(namespace)s")
            % {"name": name, "namespace": namespace or "default"}
        )
    return workload


def scale_workload(namespace: str, name: str, replicas: int) -> Workload:
    with transaction.atomic():
        workload = get_workload(namespace, name)
        workload.replicas = replicas
        workload.save(update_fields=["replicas", "updated_at"])
        enqueue("ccp.jobs.apply_workload", workload.pk)
    return workload


def delete_workload(namespace: str, name: str) -> str:
    workload = get_workload(namespace, name)
    try:
        removed = get_backend(workload.backend).delete(workload.namespace, workload.name)
    except BackendError as error:
        raise Unavailable(
            _("could not remove the pods of %(name)s: %(error)s") % {"name": name, "error": error}
        ) from None
    workload.delete()
    if removed:
        return _("deleted workload %(namespace)s/%(name)s; pods removed: %(pods)s") % {
            "namespace": namespace,
            "name": name,
            "pods": ", ".join(removed),
        }
    return _("deleted workload %(namespace)s/%(name)s; it had no pods") % {
        "namespace": namespace,
        "name": name,
    }


# WorkloadInfo properties OrderList may sort on (表G.10), plus ID (the G.8 example)
ORDER_FIELDS = {
    "id": "id",
    "namespace": "namespace",
    "workloadname": "name",
    "name": "name",
    "replicas": "replicas",
    "createddate": "created",
    "created": "created",
    "image": "image",
}


def list_workloads(namespace: str, name: str, order: list[dict[str, str]]) -> QuerySet[Workload]:
    queryset = Workload.objects.filter(namespace=namespace or "default")
    if name:
        queryset = queryset.filter(name__contains=name)
    ordering = []
    for index, item in enumerate(order):
        prop = item.get("Property") or ""
        column = ORDER_FIELDS.get(prop.replace("_", "").lower())
        if column is None:
            raise Invalid(
                _(
                    "cannot sort on %(property)s; use one of ID, Namespace, WorkloadName, "
                    "Replicas, CreatedDate, Image"
                )
                % {"property": repr(prop)},
                field=f"PAgeRequest.OrderList[{index}].Property",
            )
        descending = (item.get("Direction") or "asc").lower() == "desc"
        ordering.append(f"-{column}" if descending else column)
    return queryset.order_by(*ordering, "id")


def spec_of(workload: Workload) -> WorkloadSpec:
    env = {}
    auth = (
        Engine.objects.filter(image=workload.image)
        .exclude(auth_address="")
        .values_list("auth_address", flat=True)
        .first()
    )
    if auth:
        env["AUTH_ADDRESS"] = auth
    return WorkloadSpec(
        namespace=workload.namespace,
        name=workload.name,
        labels=dict(workload.labels),
        label_selector=dict(workload.label_selector),
        replicas=workload.replicas,
        container_name=workload.container_name,
        image=workload.image,
        cpu=workload.cpu,
        xpu_type=workload.xpu_type,
        xpu=workload.xpu,
        memory_gi=workload.memory,
        command=split_command(workload.command, "Command"),
        args=split_command(workload.args, "Args"),
        env=env,
    )


def workload_status(workload: Workload) -> str:
    try:
        status = get_backend(workload.backend).status(spec_of(workload))
    except BackendError as error:
        return f"Unknown: {error}"[:256]
    if workload.reason and status.ready < workload.replicas:
        return f"Pending: {workload.reason}"[:256]
    return status.text(workload.replicas)


# -- pods (表25, 表26) ----------------------------------------------------------------


def pods_of(namespace: str, name: str) -> list[Pod]:
    workload = get_workload(namespace, name)
    try:
        return get_backend(workload.backend).pods(workload.namespace, workload.name)
    except BackendError as error:
        raise Unavailable(
            _("cannot list the pods of %(name)s: %(error)s") % {"name": name, "error": error}
        ) from None


def pod_of(namespace: str, name: str, pod_name: str) -> Pod:
    for pod in pods_of(namespace, name):
        if pod.name == pod_name:
            return pod
    raise NotFound(
        _("no pod %(pod)s in workload %(name)s (namespace %(namespace)s)")
        % {"pod": pod_name, "name": name, "namespace": namespace or "default"}
    )
