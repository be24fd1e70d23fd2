"""Operators' and auditors' pages render and show what they promise."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from algorithms.choices import PackageStatus, TransferState
from algorithms.models import AlgoFilePackage


@pytest.fixture
def operator(client):
    user = get_user_model().objects.create_superuser("op", "op@example.org", "pw-op-123456")
    client.force_login(user)
    return client


@pytest.fixture
def failed_package():
    return AlgoFilePackage.objects.create(
        package_id="bad-1",
        url="http://127.0.0.1:9/bad.tar",
        transfer_state=TransferState.FAILED,
        status=PackageStatus.ERROR,
        status_reason="MD5 mismatch: expected aa, file has bb",
        bytes_total=3 * 1024 * 1024,
    )


def test_admin_requires_login(client):
    response = client.get("/admin/algorithms/algofilepackage/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_package_list_shows_status_reason_and_size(operator, failed_package):
    page = operator.get("/admin/algorithms/algofilepackage/").content.decode()
    assert "bad-1" in page
    assert "MD5 mismatch" in page
    assert "3.0 MiB" in page


def test_package_list_filters_by_status(operator, failed_package):
    page = operator.get("/admin/algorithms/algofilepackage/?status__exact=2").content.decode()
    assert "bad-1" not in page
    page = operator.get("/admin/algorithms/algofilepackage/?status__exact=4").content.decode()
    assert "bad-1" in page


def test_package_page_and_its_history_render(operator, failed_package):
    assert operator.get("/admin/algorithms/algofilepackage/bad-1/change/").status_code == 200
    history = operator.get("/admin/algorithms/algofilepackage/bad-1/history/")
    assert history.status_code == 200


def test_auditor_sees_history_of_deleted_packages(operator, api):
    from algorithms.actions import delete_package

    AlgoFilePackage.objects.create(package_id="gone-1", url="http://127.0.0.1:9/x.tar")
    delete_package("gone-1")
    page = operator.get("/admin/algorithms/historicalalgofilepackage/").content.decode()
    assert "gone-1" in page
    assert "deleted" in page
    assert "created" in page
