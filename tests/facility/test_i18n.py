"""Two languages: API messages follow Accept-Language (default from
FACILITY_LANGUAGE), and the zh-hans catalogue covers every string the code
marks for translation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parents[2]
PUSH = "/CAP/AlgoFilePackages"


def test_messages_follow_accept_language(api):
    english = api.post(PUSH, {"Url": "http://127.0.0.1:9/x"})
    assert english.body["Message"] == "AlgoFilePackageID: is required"
    chinese = api.post(PUSH, {"Url": "http://127.0.0.1:9/x"}, **{"Accept-Language": "zh-hans"})
    assert chinese.body["Message"] == "AlgoFilePackageID: 为必填项"
    long = api.post(
        PUSH,
        {"AlgoFilePackageID": "x" * 41, "Url": "http://127.0.0.1:9/x"},
        **{"Accept-Language": "zh-CN,zh;q=0.9"},
    )
    assert long.body["Message"] == "AlgoFilePackageID: 最多 40 个字符"


def test_domain_messages_are_translated_too(api):
    response = api.get("/CAP/AlgoFilePackages/nope", **{"Accept-Language": "zh-hans"})
    assert response.status_code == 404
    assert response.body["Message"] == "AlgoFilePackageID: 没有算法包 nope"


def test_task_and_ccp_messages_are_translated(api):
    zh = {"Accept-Language": "zh-hans"}
    task = api.get("/CAP/AlgoTasks/nope", **zh)
    assert task.status_code == 404
    assert task.body["Message"] == "ID: 没有任务 nope"
    assert api.get("/CAP/AlgoTasks/nope").body["Message"] == "ID: no task nope"
    engine = api.delete("/CCP/AlgoService/Engines/nope", **zh)
    assert engine.status_code == 404
    assert engine.body["Message"] == "没有 AlgoFilePackageID 为 nope 的引擎"
    workload = api.post(
        "/CCP/AlgoService/Workloads/nobody", {"ClusterCode": "c", "Namespace": "default"}, **zh
    )
    assert workload.status_code == 404
    assert workload.body["Message"] == "命名空间 default 中没有工作负载 nobody"


def test_default_language_is_a_setting(api, settings):
    settings.LANGUAGE_CODE = "zh-hans"
    response = api.post(PUSH, {"Url": "http://127.0.0.1:9/x"})
    assert response.body["Message"] == "AlgoFilePackageID: 为必填项"


def test_admin_follows_the_browser_language(client):
    page = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert "中心视频解析设施" in page


def test_every_marked_string_has_a_chinese_translation(tmp_path):
    """Extract the strings afresh from a copy of the code and look each up in
    the shipped catalogue: a new untranslated string fails here."""
    copy = tmp_path / "tree"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(".venv", ".cache", ".git", "var", "node_modules", "*.pyc"),
    )
    subprocess.run(
        [
            sys.executable,
            "manage.py",
            "makemessages",
            "-l",
            "zh_Hans",
            "--ignore",
            "tests/*",
            "--ignore",
            "algorithms/reference/*",
            "--ignore",
            "bench/*",
            "--ignore",
            "deploy/*",
            "--ignore",
            "var/*",
        ],
        cwd=copy,
        check=True,
        capture_output=True,
        timeout=300,
    )
    fresh = polib.pofile(str(copy / "locale/zh_Hans/LC_MESSAGES/django.po"))
    shipped = {
        entry.msgid: entry
        for entry in polib.pofile(str(ROOT / "locale/zh_Hans/LC_MESSAGES/django.po"))
    }
    missing = [
        entry.msgid
        for entry in fresh
        if entry.msgid not in shipped
        or not shipped[entry.msgid].msgstr
        or "fuzzy" in shipped[entry.msgid].flags
    ]
    assert not missing, f"untranslated (run scripts/update-translations.sh): {missing}"
    assert len(fresh) >= 50


def _manage(*args: str, language: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FACILITY_LANGUAGE": language}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_management_commands_speak_the_configured_language(tmp_path):
    """Operators read command output too: it follows FACILITY_LANGUAGE."""
    short = ("create_platform_client", "someone", "--token", "short")
    chinese = _manage(*short, language="zh-hans")
    assert chinese.returncode == 1
    assert "--token 至少需要 24 个字符" in chinese.stderr
    english = _manage(*short, language="en")
    assert "--token must be at least 24 characters" in english.stderr
    absent = str(tmp_path / "absent")
    missing = _manage("restore", "--from", absent, language="zh-hans")
    assert f"{absent} 不存在" in missing.stderr
    helped = _manage("create_platform_client", "--help", language="zh-hans")
    assert "客户端名称，例如 city-platform" in helped.stdout
    assert (
        "a name for the client" in _manage("create_platform_client", "--help", language="en").stdout
    )
