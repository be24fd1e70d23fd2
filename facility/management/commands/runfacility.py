"""Run the whole facility in one command: migrations, then the API server
(gunicorn) and the django-q2 workers side by side, stopping both together."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from facility.commands import TranslatedCommand
from facility.schedules import ensure_schedules


class Command(TranslatedCommand):
    help = gettext_noop("Migrate, then serve the API and run the background workers until stopped.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--bind",
            default=os.environ.get("FACILITY_BIND", "127.0.0.1:8000"),
            help=gettext_noop("address:port of the API server (FACILITY_BIND)"),
        )
        parser.add_argument(
            "--web-workers", type=int, default=int(os.environ.get("FACILITY_WEB_WORKERS", "2"))
        )
        parser.add_argument("--no-migrate", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["no_migrate"]:
            call_command("migrate", interactive=False, verbosity=1)
        ensure_schedules()
        # a first job for the workers, so readiness does not wait for the
        # minute-cadence heartbeat schedule
        from django_q.tasks import async_task

        async_task("facility.health.worker_heartbeat", task_name="worker heartbeat")
        # one set of request counters across the web server's processes
        metrics_dir = Path(settings.DATA_DIR) / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        manage = [sys.executable, str(settings.BASE_DIR / "manage.py")]
        commands = {
            "workers": [*manage, "qcluster"],
            "loops": [*manage, "run_loops"],
            "web": [
                sys.executable,
                "-m",
                "gunicorn",
                "facility.wsgi:application",
                "--bind",
                options["bind"],
                "--workers",
                str(options["web_workers"]),
                "--threads",
                "4",
                "--access-logfile",
                "-",
                "--graceful-timeout",
                "10",
            ],
        }

        def spawn(name: str) -> subprocess.Popen[bytes]:
            # each child leads its own process group, so what it forked can be
            # cleaned up with it
            return subprocess.Popen(commands[name], cwd=settings.BASE_DIR, start_new_session=True)

        def kill_group(child: subprocess.Popen[bytes], signum: int) -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signum)

        if settings.GB28181_PASSWORD:
            # cameras can only register once a password is configured
            commands["gb28181"] = [*manage, "run_gb28181"]
        children = {name: spawn(name) for name in commands}
        self.stdout.write(
            _(
                "facility: API on http://%(bind)s (Swagger UI at /api/docs/, admin at /admin/), "
                "workers pid %(pid)d"
            )
            % {"bind": options["bind"], "pid": children["workers"].pid}
        )
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        # A child that dies (killed, out of memory) is started again, with a
        # growing pause if it keeps dying; the others go on serving meanwhile.
        restarts: dict[str, list[float]] = {name: [] for name in commands}
        while not stopping:
            for name, child in list(children.items()):
                if child.poll() is None:
                    continue
                kill_group(child, signal.SIGKILL)  # orphans of a killed leader
                recent = [t for t in restarts[name] if time.monotonic() - t < 60]
                delay = min(30.0, 0.5 * 2 ** len(recent)) if recent else 0.0
                self.stderr.write(
                    _("facility: %(name)s exited with %(code)s; starting it again in %(delay).1f s")
                    % {"name": name, "code": child.returncode, "delay": delay}
                )
                if delay:
                    time.sleep(delay)
                restarts[name] = [*recent, time.monotonic()]
                children[name] = spawn(name)
            time.sleep(0.2)
        for child in children.values():
            kill_group(child, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                kill_group(child, signal.SIGKILL)
