"""Benchmark of task start and event latency with real parts (issue 5's numbers).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python bench/bench_task_latency.py [--creates 20] [--events 40]

Builds a throw-away database, serves the facility on a loopback port (the
engines' event intake), a real RTSP server looping vtest (tests/support/rtsp.py),
a real HTTP receiver, and the reference engine as an artifact package on a
RUNNING service of the `local` runtime (tests/e2e/test_task_e2e.py's package).

* create -> RUNNING: POST /CAP/AlgoTasks (the K.1 example, through
  django.test.Client) until the task is RUNNING on the service, median of N;
  beside it, create -> the engine's first decoded frame (its own Status
  RUNNING), which is mostly the RTSP server waiting for a keyframe;
* event latency: arrival time at the receiver minus EventTime (the frame's
  time, ms), p50/p95 over M events, with the delivery loop running
  (facility.loops' `delivery` thread at FACILITY_DELIVERY_INTERVAL_S) and the
  intake's immediate send on;

each beside a baseline measured in the same run: an HTTP POST round trip to
the receiver on loopback. Targets: create median < 1 s, event p95 < 500 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facility.settings")

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.testcases import LiveServerThread  # noqa: E402

from bench.common import Report, percentile, scratch_database  # noqa: E402

report = Report("bench_task_latency")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creates", type=int, default=20)
    parser.add_argument("--events", type=int, default=40)
    args = parser.parse_args()

    with scratch_database("bench_latency"):
        try:
            run(args)
        finally:
            from tests.support.engines import stop_all_replicas

            stop_all_replicas()
    report.write()


def run(args: argparse.Namespace) -> None:
    import tempfile

    from django.contrib.auth import get_user_model

    from compute.actions import ensure_local_node
    from facility.loops import LOOPS, run_loop
    from facility.models import PlatformClient
    from tasks.models import AlgoTask
    from tests.e2e.test_task_e2e import NAME, VERSION, reference_package
    from tests.support.examples import example
    from tests.support.http_server import FileServer
    from tests.support.receiver import Receiver
    from tests.support.rtsp import RtspServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        sys.exit(f"RTSP server unavailable: {reason}")
    scratch = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    settings.PACKAGE_STORE = scratch / "store"
    settings.DATA_DIR = scratch / "data"
    settings.FACILITY_QUEUE_MODE = "sync"
    settings.RESULT_BACKOFF_BASE_S = 0.2

    live = LiveServerThread("127.0.0.1", lambda app: app, port=0)
    live.daemon = True
    live.start()
    live.is_ready.wait()
    if live.error:
        raise live.error
    settings.PUBLIC_URL = f"http://127.0.0.1:{live.port}"
    rtsp = RtspServer()
    rtsp.start()
    rtsp.wait_playable()
    receiver = Receiver()
    arrivals: dict[str, float] = {}
    original = receiver._server.RequestHandlerClass.do_POST  # type: ignore[attr-defined]

    def timed_post(handler) -> None:  # type: ignore[no-untyped-def]
        arrivals.setdefault(handler.headers.get("X-Event-Key", ""), time.time())
        original(handler)

    receiver._server.RequestHandlerClass = type(  # type: ignore[attr-defined]
        "TimedHandler", (receiver._server.RequestHandlerClass,), {"do_POST": timed_post}
    )
    served = scratch / "served"
    served.mkdir()
    files = FileServer(served)
    files.start()
    stop = threading.Event()
    try:
        ensure_local_node()
        token = PlatformClient.new_token()
        user = get_user_model().objects.create(username="platform:bench")
        row = PlatformClient(name="bench", user=user)
        row.set_token(token)
        row.save()
        http = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

        def post(path: str, body: dict) -> dict:
            response = http.post(path, json.dumps(body), content_type="application/json")
            assert response.status_code == 200, response.content[:300]
            return response.json().get("Data") or {}

        archive = reference_package("reference-bench", capacity=4)
        url = files.add("reference-bench.tar.gz", archive.data)
        post(
            "/CAP/AlgoFilePackages",
            {"AlgoFilePackageID": "reference-bench", "Url": url, "MD5": archive.md5},
        )
        service = post(
            "/CAP/AlgoServices",
            {"Replicas": 1, "XpuType": "CPU", "AlgoFilePackageID": "reference-bench"},
        )
        from services.models import AlgoService

        status = AlgoService.objects.get(pk=service["AlgoServiceID"]).status
        assert status == "RUNNING", status

        def body() -> dict:
            document = example("D.1-K.1-d")
            info = document["TaskInfo"]
            info["Labels"] = {"AlgoCaBinName": NAME, "Version": VERSION}
            info["StreamOptions"]["VideoStreamOptions"]["Url"] = rtsp.url
            rule = info["RulesParams"][0]
            rule["ResultReceiveUrl"] = [receiver.url]
            rule["ExtendParams"]["DurationThreshold"] = 0
            rule["ExtendParams"]["RepeatAlarmIntervalThreshold"] = 0.5
            return document

        # baseline: one POST round trip to the receiver on loopback
        baseline = []
        for _ in range(50):
            start = time.perf_counter()
            requests.post(receiver.url, json={"TaskID": "baseline"}, timeout=5)
            baseline.append(time.perf_counter() - start)
        base = statistics.median(baseline)
        report(
            f"database: {connection.vendor}; baseline POST to the receiver: "
            f"median {base * 1000:.2f} ms"
        )

        # create -> RUNNING, one task at a time (deleted after each)
        to_running, to_frame = [], []
        for _ in range(args.creates):
            start = time.perf_counter()
            data = post("/CAP/AlgoTasks", body())
            task_id = data["TaskInfo"]["ID"]
            while AlgoTask.objects.get(pk=task_id).status != "RUNNING":
                time.sleep(0.005)
            to_running.append(time.perf_counter() - start)
            engine_url = (
                AlgoTask.objects.select_related("replica").get(pk=task_id).replica.engine_url
            )
            while True:
                detail = requests.get(f"{engine_url}/AlgoTasks/{task_id}", timeout=5).json()
                if detail["Data"]["Status"] == "RUNNING":
                    break
                time.sleep(0.02)
            to_frame.append(time.perf_counter() - start)
            response = http.delete(f"/CAP/AlgoTasks/{task_id}")
            assert response.status_code == 200
        median = statistics.median(to_running)
        report(
            f"create -> RUNNING (n={len(to_running)}): median {median * 1000:.1f} ms, "
            f"max {max(to_running) * 1000:.1f} ms = {median / base:.0f}x baseline "
            + ("(target < 1 s)" if median < 1 else "(OVER the 1 s target)")
        )
        report(
            f"create -> engine's first decoded frame: median "
            f"{statistics.median(to_frame) * 1000:.0f} ms (RTSP open + next keyframe, 1 s GOP)"
        )

        # event latency with the delivery loop running
        loop = next(item for item in LOOPS if item.name == "delivery")
        thread = threading.Thread(target=run_loop, args=(loop, stop), daemon=True)
        thread.start()
        task_id = post("/CAP/AlgoTasks", body())["TaskInfo"]["ID"]
        deadline = time.monotonic() + 60 + args.events * 3
        keys: list[str] = []
        while time.monotonic() < deadline:
            keys = [
                r["headers"]["X-Event-Key"]
                for r in receiver.received
                if r["body"].get("TaskID") == task_id
            ]
            if len(keys) >= args.events + 3:
                break
            time.sleep(0.1)
        events = {
            r["headers"]["X-Event-Key"]: r["body"]["EventTime"]
            for r in receiver.received
            if r["body"].get("TaskID") == task_id
        }
        latencies = [arrivals[k] - events[k] / 1000 for k in keys[3:]]  # skip the warm-up
        assert latencies, "no events"
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        report(
            f"event latency frame -> receiver (n={len(latencies)}, delivery loop every "
            f"{settings.DELIVERY_INTERVAL_S:g} s + send on intake): p50 {p50 * 1000:.0f} ms, "
            f"p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms = "
            f"{p95 / base:.0f}x baseline "
            + ("(target p95 < 500 ms)" if p95 < 0.5 else "(OVER the 500 ms target)")
        )
    finally:
        stop.set()
        files.stop()
        receiver.close()
        rtsp.close()
        live.terminate()


if __name__ == "__main__":
    main()
