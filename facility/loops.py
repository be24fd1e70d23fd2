"""Sub-minute background loops (django-q2's scheduler works in minutes):
sampling compute resources and reconciling services. `manage.py run_loops`
runs each in its own thread at its own cadence."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Loop:
    name: str
    job: str  # dotted path of a function taking no arguments
    interval_s: Callable[[], float]


LOOPS = [
    Loop("heartbeat", "facility.health.loops_heartbeat", lambda: 10.0),
    Loop(
        "registration",
        "facility.registration.keep_registered",
        lambda: settings.PLATFORM_HEARTBEAT_S,
    ),
    Loop("sampler", "compute.jobs.sample_local_node", lambda: settings.FACILITY_SAMPLE_INTERVAL_S),
    Loop("reconciler", "services.jobs.reconcile_services", lambda: settings.RECONCILE_INTERVAL_S),
    Loop("tasks", "tasks.jobs.reconcile_tasks", lambda: settings.RECONCILE_INTERVAL_S),
    Loop("delivery", "tasks.jobs.deliver_due", lambda: settings.DELIVERY_INTERVAL_S),
    Loop("gat1400", "tasks.sinks.gat1400.keep_alive", lambda: settings.GAT1400_KEEPALIVE_S),
    Loop("images", "tasks.jobs.analyze_due_images", lambda: settings.DELIVERY_INTERVAL_S),
    # devices still go offline when the SIP process is down
    Loop("gb28181-offline", "gb28181.devices.sweep_offline", lambda: 5.0),
    Loop("ccp", "ccp.jobs.reconcile_workloads", lambda: settings.RECONCILE_INTERVAL_S),
]


def run_loop(loop: Loop, stop: threading.Event, max_ticks: int = 0) -> int:
    job = import_string(loop.job)
    interval = loop.interval_s()
    ticks = 0
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            close_old_connections()
            try:
                job()
            except Exception:  # keep looping through a passing outage; the log says what
                log.exception("loop %s failed", loop.name)
            ticks += 1
            if max_ticks and ticks >= max_ticks:
                break
            next_at = max(next_at + interval, time.monotonic())
            stop.wait(max(0.0, next_at - time.monotonic()))
    finally:
        connection.close()
    return ticks


def run_all(stop: threading.Event, names: list[str] | None = None) -> list[threading.Thread]:
    threads = []
    for loop in LOOPS:
        if names and loop.name not in names:
            continue
        thread = threading.Thread(target=run_loop, args=(loop, stop), name=loop.name, daemon=True)
        thread.start()
        threads.append(thread)
    return threads
