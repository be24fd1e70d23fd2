"""Benchmark of the compute status interfaces (issue 3's numbers).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/bench_status.py [--nodes 10] [--days 7]

Builds a throw-away database (never the facility's own), fills it with
NODES × DAYS of raw samples at the sampling cadence (one card per node, one
algorithm service replica holding half of it and owning its GPU process) and
builds their per-minute rollup as the migration would (timed), then
prints, as ratios to a bare `SELECT 1` round-trip measured in the same run,
the p50/p99 latency of /CAD/Status, /CAP/Status, /CCP/Cluster/Monitors and
/CCP/Node/Monitors through the whole Django stack; and the sampler's CPU cost
as a share of one core at the configured cadence.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facility.settings")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

# the process starts as gunicorn starts the facility: the WSGI module loads
# the URLconf and freezes the loaded heap out of the garbage collector's way
import facility.wsgi  # noqa: E402, F401
from bench.common import Report, percentile, scratch_database, timed  # noqa: E402

report = Report("bench_status")


def populate(nodes: int, days: float, cadence_s: int) -> list[int]:
    from compute.models import Cluster, Node, ResourceSample, XpuCard

    cluster = Cluster.objects.create(code="bench", name="bench")
    now = timezone.now()
    count = int(days * 86400 / cadence_s)
    node_ids = []
    for number in range(nodes):
        node = Node.objects.create(
            cluster=cluster,
            name=f"bench-{number}",
            ip=f"127.0.1.{number}",
            cpu_cores=32,
            memory_gb=128,
            disk_gb=2000,
            last_seen_at=now,
        )
        card = XpuCard.objects.create(node=node, index=0, xpu_type="NVIDIA_T4", memory_gb=16)
        node_ids.append(node.pk)
        batch: list[ResourceSample] = []
        for step in range(count):
            at = now - timedelta(seconds=step * cadence_s)
            value = (step % 100) / 100
            batch.append(
                ResourceSample(
                    node=node,
                    taken_at=at,
                    period_s=cadence_s,
                    cpu_utilization=value,
                    memory_used_gb=64 * value,
                    disk_used_gb=1000,
                )
            )
            batch.append(
                ResourceSample(
                    node=node,
                    card=card,
                    taken_at=at,
                    period_s=cadence_s,
                    xpu_utilization=value,
                    xpu_memory_used_gb=8 * value,
                    processes=[{"Pid": 1000 + number, "MemoryUsedGB": 8 * value, "Started": 0}],
                )
            )
            if len(batch) >= 20_000:
                ResourceSample.objects.bulk_create(batch)
                batch = []
        ResourceSample.objects.bulk_create(batch)
        add_service_replica(node, card, number)
    # the samples were bulk-loaded past the sampler: build their per-minute
    # rollup the way the migration backfills an existing table
    from compute import rollup

    started = time.perf_counter()
    oldest = now - timedelta(seconds=count * cadence_s)
    minutes = rollup.rebuild(int(oldest.timestamp()), int(now.timestamp()) + 1)
    rollup_s = time.perf_counter() - started
    if connection.vendor == "postgresql":
        # what autovacuum does to a table after a bulk load (statistics, the
        # visibility map), done now rather than while the calls are timed
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE compute_resourcesample")
            cursor.execute("VACUUM ANALYZE compute_samplerollup")
    report(f"rollup: {minutes:,} per-minute rows built from the samples in {rollup_s:.0f} s")
    return node_ids


def add_service_replica(node, card, number: int) -> None:  # type: ignore[no-untyped-def]
    """One algorithm service replica per node, holding half its card and
    owning the GPU process of its samples, so AlgoServiceMonitors and
    XpuUseDetails are part of what is measured."""
    from algorithms.models import AlgoFilePackage
    from services.choices import ReplicaState
    from services.models import AlgoService, Replica

    package, _ = AlgoFilePackage.objects.get_or_create(
        package_id="bench-pkg", defaults={"url": "http://127.0.0.1:9/bench.tar"}
    )
    service, _ = AlgoService.objects.get_or_create(
        service_id="svc-bench",
        defaults={"package": package, "replicas": 10, "xpu_type": "NVIDIA_T4", "runtime": "local"},
    )
    Replica.objects.create(
        service=service,
        index=number,
        name=f"svc-bench-{number}",
        node=node,
        card=card,
        quota=0.5,
        port=30000 + number,
        runtime="local",
        handle_ref=f"{1000 + number}:0",
        state=ReplicaState.RUNNING,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--days", type=float, default=7)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument(
        "--keep-db",
        action="store_true",
        help="leave the filled database behind (to EXPLAIN queries against it)",
    )
    args = parser.parse_args()

    with scratch_database("bench_compute", keep=args.keep_db):
        run(args)
    report.write()


def run(args: argparse.Namespace) -> None:
    from compute import jobs
    from facility.models import PlatformClient

    cadence = int(settings.FACILITY_SAMPLE_INTERVAL_S)
    start = time.perf_counter()
    node_ids = populate(args.nodes, args.days, cadence)
    from compute.models import ResourceSample

    rows = ResourceSample.objects.count()
    report(
        f"database: {connection.vendor}; {args.nodes} nodes x {args.days:g} days at {cadence} s "
        f"= {rows:,} sample rows (filled in {time.perf_counter() - start:.0f} s)"
    )

    # the sampler's own CPU time per sample (the database server's is not counted)
    jobs.sample_local_node(force=True)
    cpu_start = time.process_time()
    samples = 20
    for _ in range(samples):
        jobs.sample_local_node(force=True)
    cpu_per_sample = (time.process_time() - cpu_start) / samples
    report(
        f"sampler: {cpu_per_sample * 1000:.1f} ms CPU per sample = "
        f"{100 * cpu_per_sample / cadence:.3f} % of one core at a {cadence} s cadence "
        "(target < 1 %)"
    )

    from django.contrib.auth import get_user_model

    token = PlatformClient.new_token()
    client_row = PlatformClient(
        name="bench", user=get_user_model().objects.create(username="platform:bench")
    )
    client_row.set_token(token)
    client_row.save()
    http = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def select_one() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def call(method: str, path: str):  # type: ignore[no-untyped-def]
        def go() -> None:
            response = getattr(http, method)(path, content_type="application/json")
            assert response.status_code == 200, response.content[:300]

        return go

    baseline = timed(select_one, args.repeat * 5)
    base50, base99 = percentile(baseline, 0.5), percentile(baseline, 0.99)
    report(f"baseline SELECT 1: p50 {base50 * 1000:.3f} ms, p99 {base99 * 1000:.3f} ms")
    report(f"{'interface':<40} {'p50 ms':>8} {'p99 ms':>8} {'p50/SELECT1':>12} {'p99/SELECT1':>12}")
    for label, method, path in (
        ("GET /CAD/Status", "get", "/CAD/Status"),
        ("GET /CAP/Status", "get", "/CAP/Status"),
        ("GET /CCP/Cluster/Monitors/bench", "get", "/CCP/Cluster/Monitors/bench"),
        ("POST /CCP/Node/Monitors/<id>", "post", f"/CCP/Node/Monitors/{node_ids[0]}"),
    ):
        latencies = timed(call(method, path), args.repeat)
        p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
        report(
            f"{label:<40} {p50 * 1000:>8.2f} {p99 * 1000:>8.2f} "
            f"{p50 / base50:>12.0f} {p99 / base99:>12.0f}"
            + ("" if p99 < 0.050 else "   (over the 50 ms p99 target)")
        )
    report(f"(means of all calls: {statistics.mean(baseline) * 1000:.3f} ms for SELECT 1)")


if __name__ == "__main__":
    main()
