"""The operators' compute dashboard (Django test client)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from compute.dashboard.charts import LINE_COLOUR
from tests.compute.dashboard_data import fill, staff_user

pytestmark = pytest.mark.usefixtures("compute_settings")


def test_the_dashboard_needs_a_staff_login() -> None:
    anonymous = Client()
    response = anonymous.get("/dashboard/compute/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]

    visitor = Client()
    staff_user(visitor, staff=False)
    response = visitor.get("/dashboard/compute/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_the_dashboard_draws_every_cluster_node_and_card_with_its_numbers() -> None:
    fill()
    client = Client()
    staff_user(client)
    page = client.get("/dashboard/compute/").content.decode()

    assert "cluster dash" in page and "node gpu-node-1" in page and "node cpu-node-2" in page
    # the newest sample's values head the charts
    assert "42.0 %" in page and "33.3 GB" in page and "444.0 GB" in page
    assert "card 0 NVIDIA_T4 utilisation" in page and "77.0 %" in page and "5.5 GB" in page
    # cluster: memory summed over the online nodes (33.3 + 4)
    assert "37.3 GB" in page
    # one chart per metric: cluster 3 + 2 for its card, gpu node 3 + 2, cpu node 3,
    # the facility's own node 3 (cluster-1) plus its cluster's 3
    assert page.count('<svg class="chart"') == 5 + 5 + 3 + 3 + 3
    lines = re.findall(r'<polyline class="series" points="([^"]+)"', page)
    assert len(lines) >= 10
    assert max(len(points.split()) for points in lines) >= 30  # an hour at 2-minute steps
    assert LINE_COLOUR in page
    # nothing to fetch from elsewhere: no script, no external stylesheet or image
    assert "<script" not in page
    assert not re.search(r'(src|href)="(https?:)?//', page)

    # the service quota table
    table = page[page.index('id="quota-table"') :]
    row = re.search(r"<tr><td>gpu-node-1</td>.*?</tr>", table)
    assert row is not None
    assert "svc-dashboard-1" in row.group(0) and "pkg-dash" in row.group(0)
    assert ">2<" in row.group(0) and ">0.75<" in row.group(0)


def test_the_day_range_covers_a_day() -> None:
    fill()
    client = Client()
    staff_user(client)
    page = client.get("/dashboard/compute/?range=day").content.decode()
    assert 'class="current">last day' in page
    assert page.count('<svg class="chart"') == 19


def test_the_admin_index_links_the_dashboard() -> None:
    client = Client()
    staff_user(client)
    page = client.get("/admin/").content.decode()
    assert 'href="/dashboard/compute/"' in page
