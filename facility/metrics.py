"""/metrics in Prometheus text format.

Request counts are counted in-process (aggregated across the web server's
processes when PROMETHEUS_MULTIPROC_DIR is set, as `make run` does); every
other figure is read from the database at scrape time, so it is the same
whichever process answers. Access: a bearer FACILITY_METRICS_TOKEN, or a
client address in FACILITY_METRICS_ALLOW_NETWORKS (loopback by default)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

REQUESTS = Counter(
    "facility_requests",
    "Calls to the facility's interfaces, by interface (URL name), method and Code",
    ["interface", "method", "code"],
)


def interface_of(path: str) -> str:
    try:
        return resolve(path).url_name or "unknown"
    except Resolver404:
        return "unknown"


class RequestMetricsMiddleware:
    PREFIXES = ("/CAD/", "/CCP/", "/CAP/", "/api/compute/", "/api/deliveries", "/internal/")

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(self.PREFIXES):
            from facility.audit_log import _outcome

            code, _ = _outcome(response)
            REQUESTS.labels(interface_of(request.path), request.method, code or "none").inc()
        return response


class FacilityCollector:
    """Figures read from the database at scrape time."""

    def collect(self) -> Iterator[Metric]:
        from django_q.models import OrmQ

        from algorithms.models import AlgoFilePackage
        from compute.models import Node, ResourceSample
        from facility.models import Heartbeat
        from services.models import AlgoService, Replica
        from tasks.models import AlgoTask, Delivery

        yield _by(
            "facility_tasks",
            "Analysis tasks by status",
            "status",
            AlgoTask.objects.values_list("status").annotate(n=Count("pk")),
        )
        yield _by(
            "facility_services",
            "Algorithm services by status",
            "status",
            AlgoService.objects.visible().values_list("status").annotate(n=Count("pk")),
        )
        yield _by(
            "facility_replicas",
            "Service replicas by state",
            "state",
            Replica.objects.values_list("state").annotate(n=Count("pk")),
        )
        yield _by(
            "facility_deliveries",
            "Result deliveries by state",
            "state",
            Delivery.objects.values_list("state").annotate(n=Count("pk")),
        )
        attempts = GaugeMetricFamily(
            "facility_delivery_attempts", "Delivery attempts made, by outcome", labels=["outcome"]
        )
        sums = Delivery.objects.aggregate(total=Sum("attempts"))
        delivered = Delivery.objects.filter(state="delivered").count()
        attempts.add_metric(["delivered"], delivered)
        attempts.add_metric(["failed"], max(0, (sums["total"] or 0) - delivered))
        yield attempts
        depth = GaugeMetricFamily("facility_delivery_queue_depth", "Deliveries waiting to be sent")
        depth.add_metric([], Delivery.objects.filter(state="pending").count())
        yield depth
        yield _by(
            "facility_packages",
            "Algorithm packages by status (表I.5)",
            "status",
            AlgoFilePackage.objects.values_list("status").annotate(n=Count("pk")),
        )
        downloaded = GaugeMetricFamily(
            "facility_download_bytes", "Bytes of package downloads done so far"
        )
        downloaded.add_metric(
            [], AlgoFilePackage.objects.aggregate(total=Sum("bytes_done"))["total"] or 0
        )
        yield downloaded
        failures = GaugeMetricFamily("facility_download_failures", "Packages whose download failed")
        failures.add_metric([], AlgoFilePackage.objects.filter(transfer_state="failed").count())
        yield failures
        queue = GaugeMetricFamily("facility_worker_queue_depth", "Jobs waiting for a worker")
        queue.add_metric([], OrmQ.objects.count())
        yield queue
        yield from _node_metrics(Node, ResourceSample)
        beats = GaugeMetricFamily(
            "facility_heartbeat_timestamp_seconds",
            "Last heartbeat of each process",
            labels=["process"],
        )
        for row in Heartbeat.objects.all():
            beats.add_metric([row.name], row.at.timestamp())
        yield beats


def _by(name: str, documentation: str, label: str, rows: object) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value, count in rows:  # type: ignore[attr-defined]
        family.add_metric([str(value)], count)
    return family


def _node_metrics(node_model: type, sample_model: type) -> Iterator[Metric]:
    cpu = GaugeMetricFamily("facility_node_cpu_utilization", "CPU use 0..1", labels=["node"])
    memory = GaugeMetricFamily("facility_node_memory_used_bytes", "Memory in use", labels=["node"])
    card_util = GaugeMetricFamily(
        "facility_card_utilization", "Accelerator use 0..1", labels=["node", "card", "xpu_type"]
    )
    card_memory = GaugeMetricFamily(
        "facility_card_memory_used_bytes",
        "Accelerator memory in use",
        labels=["node", "card", "xpu_type"],
    )
    for node in node_model.objects.prefetch_related("cards"):  # type: ignore[attr-defined]
        newest = (
            sample_model.objects.filter(node=node, card__isnull=True)  # type: ignore[attr-defined]
            .order_by("-taken_at")
            .first()
        )
        if newest is not None:
            if newest.cpu_utilization is not None:
                cpu.add_metric([node.name], newest.cpu_utilization)
            if newest.memory_used_gb is not None:
                memory.add_metric([node.name], newest.memory_used_gb * 1024**3)
        for card in node.cards.all():
            sample = (
                sample_model.objects.filter(node=node, card=card)  # type: ignore[attr-defined]
                .order_by("-taken_at")
                .first()
            )
            if sample is None:
                continue
            labels = [node.name, str(card.index), card.xpu_type]
            if sample.xpu_utilization is not None:
                card_util.add_metric(labels, sample.xpu_utilization)
            if sample.xpu_memory_used_gb is not None:
                card_memory.add_metric(labels, sample.xpu_memory_used_gb * 1024**3)
    yield cpu
    yield memory
    yield card_util
    yield card_memory


def _allowed(request: HttpRequest) -> bool:
    if settings.METRICS_TOKEN:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if header == f"Bearer {settings.METRICS_TOKEN}":
            return True
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    return any(
        address in ipaddress.ip_network(network, strict=False)
        for network in settings.METRICS_ALLOW_NETWORKS
        if ipaddress.ip_network(network, strict=False).version == address.version
    )


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _allowed(request):
        return HttpResponse(
            "metrics: not allowed from here\n", status=403, content_type="text/plain"
        )
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUESTS)
    registry.register(FacilityCollector())  # type: ignore[arg-type]
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
