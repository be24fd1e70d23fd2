"""Recovery times after faults (issue 8): how long each part of the facility
takes to serve again after SIGKILL, beside the facility's own cold start
measured in the same run (the baseline). Uses the fault tests' harness.

    .venv/bin/python bench/bench_recovery.py          # SQLite, or DATABASE_URL

Writes bench/results/recovery.md."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "facility.settings")

import django  # noqa: E402

django.setup()

from tests.faults.harness import Facility, scratch_database, stub_package, wait_for  # noqa: E402
from tests.support.http_server import FileServer  # noqa: E402


def timed(action, check, what: str) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    action()
    wait_for(check, 120, what, every_s=0.05)
    return time.monotonic() - started


def main() -> None:
    data = Path(tempfile.mkdtemp(prefix="bench-recovery-"))
    url, drop = scratch_database()
    facility = Facility(data, url)
    rows: list[tuple[str, float]] = []
    try:
        facility.prepare()
        cold = facility.start()
        served = data / "served"
        served.mkdir()
        server = FileServer(served)
        server.start()
        package_url = server.add("stub.tar.gz", stub_package())
        facility.call(
            "POST", "/CAP/AlgoFilePackages", {"AlgoFilePackageID": "s", "Url": package_url}
        )
        wait_for(
            lambda: facility.call("GET", "/CAP/AlgoFilePackages/s")["Data"]["Status"] == 2,
            60,
            "package",
        )

        def api_up() -> bool:
            return facility.call("POST", "/CAP/AlgoFilePackages:search", {})["Code"] == 0

        rows.append(
            (
                "web server (gunicorn) killed → API answers",
                timed(lambda: facility.kill_child("gunicorn"), api_up, "web"),
            )
        )

        counter = iter(range(100))

        def download_after(kill: str) -> float:
            package_id = f"p{next(counter)}"
            return timed(
                lambda: (
                    facility.kill_child(kill),
                    facility.call(
                        "POST",
                        "/CAP/AlgoFilePackages",
                        {"AlgoFilePackageID": package_id, "Url": package_url},
                    ),
                ),
                lambda: (
                    facility.call("GET", f"/CAP/AlgoFilePackages/{package_id}")["Data"]["Status"]
                    == 2
                ),
                "download",
            )

        rows.append(
            ("workers (qcluster) killed → a pushed package is fetched", download_after("qcluster"))
        )
        rows.append(
            (
                "whole facility killed → started again, API answers",
                timed(lambda: (facility.kill_all(), facility.start()), api_up, "restart"),
            )
        )
        server.stop()
    finally:
        facility.stop()
        drop()
        shutil.rmtree(data, ignore_errors=True)

    lines = [
        "# Recovery after faults",
        "",
        f"Database: {'PostgreSQL' if url else 'SQLite'}; baseline: cold start of the facility "
        f"(migrated database → API answering) = **{cold:.2f} s** in the same run.",
        "",
        "| fault | recovery (s) | ratio to cold start |",
        "|---|---|---|",
        *[f"| {name} | {seconds:.2f} | {seconds / cold:.2f} |" for name, seconds in rows],
        "",
        "A killed replica and the stored-event check are covered by tests/faults/test_faults.py.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    out = ROOT / "bench" / "results" / "recovery.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
