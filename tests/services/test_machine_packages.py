"""CAD machine packages (表4–7): install = run on this device, uninstall =
stop, list and detail in the tables' shapes."""

from __future__ import annotations

import re

import requests

from services.models import Replica
from tests.support.examples import example

URI = "/CAD/Machine/AlgoPackages"


def test_install_runs_the_package_with_its_args_and_list_shows_it(engines, api):
    engines.package()
    response = api.post(URI, {"AlgoFilePackageID": "stub-1", "Args": "XpuType=CPU --fast"})
    assert response.status_code == 200, response.body
    assert response.body["Code"] == "0"

    replica = Replica.objects.get(service__package_id="stub-1")
    health = requests.get(f"{replica.engine_url}/Health", timeout=3).json()["Data"]
    assert health["Args"] == ["XpuType=CPU", "--fast"]

    listed = api.post(URI, {}).body
    assert listed["Code"] == "0"
    (item,) = listed["Data"]
    assert item["AlgoPackageName"] == "stub-engine"
    assert item["AlgoPackageType"] == "BIN"
    assert item["AlgoPackageVersion"] == "1.0"
    assert item["Status"] == "RUNNING"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", item["CreatedDate"])
    assert list(item) == [
        "AlgoPackageName",
        "AlgoPackageType",
        "AlgoPackageVersion",
        "AlgoFilePackageID",
        "Status",
        "CreatedDate",
    ]
    assert api.get(f"{URI}/stub-1").body["Data"]["Status"] == "RUNNING"


def test_installing_twice_runs_one_copy(engines, api):
    engines.package()
    api.post(URI, {"AlgoFilePackageID": "stub-1"})
    api.post(URI, {"AlgoFilePackageID": "stub-1"})
    assert Replica.objects.filter(service__package_id="stub-1").count() == 1


def test_uninstall_stops_it_and_list_filters_by_status(engines, api):
    engines.package()
    api.post(URI, {"AlgoFilePackageID": "stub-1"})
    replica = Replica.objects.get(service__package_id="stub-1")
    assert api.delete(f"{URI}/stub-1").status_code == 200
    try:
        requests.get(f"{replica.engine_url}/Health", timeout=1)
        answered = True
    except requests.ConnectionError:
        answered = False
    assert not answered
    assert api.post(URI, example("C.2-d")).body["Data"] == []  # Status RUNNING
    stopped = api.post(URI, {"Status": "STOPPED"}).body["Data"]
    assert [item["AlgoFilePackageID"] for item in stopped] == ["stub-1"]
    assert api.get(f"{URI}/stub-1").body["Data"]["Status"] == "STOPPED"
    assert api.delete(f"{URI}/stub-1").status_code == 200  # repeating succeeds


def test_example_c1_is_answered_with_a_clear_error_when_the_package_is_absent(api):
    response = api.post(URI, example("C.1-d"))
    assert response.status_code == 404
    assert response.body["Code"] == "40400"
    assert "no package 1101150192508600000120231012203630000102" in response.body["Message"]


def test_unknown_package_detail_and_uninstall_are_404(api):
    assert api.get(f"{URI}/nope").status_code == 404
    assert api.delete(f"{URI}/nope").status_code == 404


def test_bad_status_filter_is_refused(api):
    response = api.post(URI, {"Status": "PAUSED"})
    assert response.status_code == 400
    assert "Status: must be one of: RUNNING, STOPPED" in response.body["Message"]
