"""The compute dashboard speaks the operator's language: the browser's
Accept-Language picks Chinese or English for every heading, chart title and
table header (the admin works the same way)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from tests.compute.dashboard_data import fill, staff_user

pytestmark = pytest.mark.usefixtures("compute_settings")


@pytest.fixture
def staff_client() -> Client:
    client = Client()
    staff_user(client)
    return client


def page(client: Client, language: str, query: str = "") -> str:
    response = client.get(f"/dashboard/compute/{query}", HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    return response.content.decode()


def texts(html: str) -> str:
    """The visible text: tags dropped, so markup cannot satisfy a check."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_dashboard_in_chinese(staff_client: Client) -> None:
    fill()
    html = page(staff_client, "zh-hans")
    shown = texts(html)
    assert '<html lang="zh-hans">' in html
    assert "<title>算力看板 · 设施</title>" in html
    for text in (
        "算力看板",
        "管理后台",
        "各服务占用的卡配额",
        "运行中的副本",
        "最近一小时",
        "集群 dash",
        "· 2 个节点",  # the cluster's node count
        "节点 gpu-node-1",
        "CPU（16 核）",
        "内存（64 GB）",
        "磁盘（1000 GB）",
        "卡 0 NVIDIA_T4 利用率",
        "在线",
    ):
        assert text in shown, text
    # the standard's field names stay as they are
    assert "AlgoServiceID" in shown and "XpuQuota" in shown
    for english in ("Compute dashboard", "Card quota held by services", "live replicas", " cores)"):
        assert english not in shown, english
    assert "最近一天" in texts(page(staff_client, "zh-CN,zh;q=0.9", "?range=day"))


def test_the_dashboard_in_english(staff_client: Client) -> None:
    fill()
    html = page(staff_client, "en")
    shown = texts(html)
    assert '<html lang="en">' in html
    assert "<title>Compute dashboard · facility</title>" in html
    for text in (
        "Compute dashboard",
        "Card quota held by services",
        "live replicas",
        "last hour",
        "cluster dash",
        "node gpu-node-1",
        "CPU (16 cores)",
        "card 0 NVIDIA_T4 utilisation",
        "online",
    ):
        assert text in shown, text
    assert not re.search(r"[\u4e00-\u9fff]", shown), "Chinese on the English page"


def test_the_admin_index_links_the_dashboard_in_chinese(staff_client: Client) -> None:
    shown = texts(staff_client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode())
    assert "看板" in shown and "算力：集群、节点、卡与服务配额" in shown
