"""The dashboard in a real headless Chromium (Debian's `chromium`).

The page is fetched with a logged-in Django test client (it needs a staff
session and has no external assets: CSS inline, charts inline SVG), written
to a file and opened by Chromium, which writes a screenshot. The test then
counts pixels of the chart line colour in the PNG: when the charts do not
render, there are none, and the test fails. The same page with its chart
lines removed is the control that proves the count can fail.

Chromium comes from scripts/ensure-chromium.sh (apt-get, when root). Where it
cannot be installed the test skips, except with CI=true, where it fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.test import Client

from compute.dashboard.charts import HEIGHT, LINE_COLOUR, WIDTH
from tests.compute.dashboard_data import fill, staff_user
from tests.compute.png import read_png

pytestmark = pytest.mark.usefixtures("compute_settings")

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("FACILITY_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = os.environ.get("FACILITY_SCREENSHOT_DIR", "")


def chromium() -> str:
    if not (Path(CHROMIUM).exists() and os.access(CHROMIUM, os.X_OK)):
        result = subprocess.run(
            [str(ROOT / "scripts" / "ensure-chromium.sh")],
            capture_output=True,
            text=True,
            timeout=900,
        )
        if result.returncode != 0:
            reason = f"chromium is not available: {result.stderr.strip()[-500:]}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(reason)
            pytest.skip(reason)
    return CHROMIUM


def screenshot(html: str, workdir: Path, name: str) -> Path:
    page = workdir / f"{name}.html"
    page.write_text(html)
    png = workdir / f"{name}.png"
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=workdir)
    result = subprocess.run(
        [
            chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--screenshot={png}",
            "--window-size=1280,900",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    shutil.rmtree(profile, ignore_errors=True)
    assert png.exists(), (
        f"chromium wrote no screenshot (rc {result.returncode}): {result.stderr[-2000:]}"
    )
    if ARTIFACTS:
        Path(ARTIFACTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(png, Path(ARTIFACTS) / png.name)
    return png


def line_rgb() -> tuple[int, int, int]:
    value = LINE_COLOUR.lstrip("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def test_the_charts_render_in_headless_chromium(tmp_path) -> None:
    fill()
    client = Client()
    staff_user(client)
    html = client.get("/dashboard/compute/").content.decode()

    image = read_png(screenshot(html, tmp_path, "dashboard"))
    assert (image.width, image.height) == (1280, 900)
    colour = line_rgb()
    drawn = image.count(colour, tolerance=30)
    # the first row of charts (the cluster's CPU, memory, disk, card) is in
    # view: each is a line of a few hundred pixels, 2.5 px wide
    assert drawn > 1500, f"only {drawn} pixels of the chart line colour: charts did not render"
    # and the lines lie inside chart boxes: a chart-sized box holds at least one
    # full line, so scan the screen in chart-sized windows
    best = max(
        image.count(colour, tolerance=30, box=(x, y, x + WIDTH, y + HEIGHT))
        for x in range(0, image.width - WIDTH, WIDTH // 2)
        for y in range(0, image.height - HEIGHT, HEIGHT // 2)
    )
    assert best > 300, f"no chart-sized area holds a line ({best} pixels at best)"

    # the control: the same page without its chart lines shows (almost) none
    blank = re.sub(r"<polyline class=\"series\"[^>]*/>", "", html)
    blank = re.sub(r'<circle [^>]*fill="' + LINE_COLOUR + '"/>', "", blank)
    control = read_png(screenshot(blank, tmp_path, "dashboard-no-lines"))
    assert control.count(colour, tolerance=30) < drawn / 20
