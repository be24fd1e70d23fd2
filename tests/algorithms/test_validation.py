"""Every length, type and required-ness rule of 表I.1, 表I.3, 表I.8 and 表B.1:
HTTP 400, a non-zero Code of the interface's type, a Message naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from algorithms.models import AlgoFilePackage

PUSH = "/CAP/AlgoFilePackages"
SEARCH = "/CAP/AlgoFilePackages:search"
EXEC = "/CAP/AlgoFilePackages:pushExecFile"
CAD_PUSH = "/CAD/Machine/AlgoFilePackages"

ID = "1101150192508600000120231012203630000102"
MD5 = "d577273ff885c3f84dadb8578bb41399"
URL = "http://127.0.0.1:9/package.tar"
LONG_URL = "http://127.0.0.1/" + "a" * 1008  # 1025 characters

VALID = {
    PUSH: {"AlgoFilePackageID": ID, "MD5": MD5, "Url": URL, "Name": "helmet"},
    SEARCH: {"PageNumber": 1, "PageSize": 10, "Name": "helmet"},
    EXEC: {"Type": "artifact", "MD5": MD5, "Name": "exec", "Url": URL, "AlgoFilePackageID": ID},
    CAD_PUSH: {
        "Url": URL,
        "AlgoFilePackageID": ID,
        "AuthAddress": "127.0.0.1:8080",
        "LicenseFile": "/auth_license.txt",
    },
}

# (interface, field, bad value or MISSING, words the Message must contain)
MISSING = object()
RULES: list[tuple[str, str, Any, str]] = [
    # 表I.1
    (PUSH, "AlgoFilePackageID", "a" * 41, "AlgoFilePackageID: at most 40 characters"),
    (PUSH, "AlgoFilePackageID", MISSING, "AlgoFilePackageID: is required"),
    (PUSH, "AlgoFilePackageID", "", "AlgoFilePackageID: must not be empty"),
    (PUSH, "AlgoFilePackageID", 1101150192, "AlgoFilePackageID: must be a string"),
    (PUSH, "AlgoFilePackageID", None, "AlgoFilePackageID: must not be null"),
    (PUSH, "AlgoFilePackageID", "../etc", "AlgoFilePackageID: may contain only"),
    (PUSH, "AlgoFilePackageID", "a b", "AlgoFilePackageID: may contain only"),
    (PUSH, "MD5", "a" * 33, "MD5: at most 32 characters"),
    (PUSH, "MD5", "z" * 32, "MD5: must be 32 hexadecimal digits"),
    (PUSH, "MD5", "abc", "MD5: must be 32 hexadecimal digits"),
    (PUSH, "MD5", 12345, "MD5: must be a string"),
    (PUSH, "Url", LONG_URL, "Url: at most 1024 characters"),
    (PUSH, "Url", MISSING, "Url: is required"),
    (PUSH, "Url", "", "Url: must not be empty"),
    (PUSH, "Url", ["http://x/"], "Url: must be a string"),
    (PUSH, "Url", "ftp://127.0.0.1/x.tar", "Url: must be an http:// or https:// URL"),
    (PUSH, "Name", "n" * 129, "Name: at most 128 characters"),
    (PUSH, "Name", 5, "Name: must be a string"),
    # 表I.3
    (SEARCH, "PageNumber", "1", "PageNumber: must be an integer"),
    (SEARCH, "PageNumber", 0, "PageNumber: must be at least 1"),
    (SEARCH, "PageNumber", 1.5, "PageNumber: must be an integer"),
    (SEARCH, "PageNumber", True, "PageNumber: must be an integer"),
    (SEARCH, "PageSize", 1001, "PageSize: must be at most 1000"),
    (SEARCH, "PageSize", 0, "PageSize: must be at least 1"),
    (SEARCH, "PageSize", "20", "PageSize: must be an integer"),
    (SEARCH, "Name", "n" * 129, "Name: at most 128 characters"),
    (SEARCH, "Name", 7, "Name: must be a string"),
    # 表I.8
    (EXEC, "Type", MISSING, "Type: is required"),
    (EXEC, "Type", "binary", "Type: must be one of: image, artifact"),
    (EXEC, "Type", "x" * 11, "Type: must be one of"),
    (EXEC, "Type", 1, "Type: must be a string"),
    (EXEC, "MD5", MISSING, "MD5: is required"),
    (EXEC, "MD5", "", "MD5: must not be empty"),
    (EXEC, "MD5", "a" * 33, "MD5: at most 32 characters"),
    (EXEC, "MD5", "g" * 32, "MD5: must be 32 hexadecimal digits"),
    (EXEC, "Name", "n" * 129, "Name: at most 128 characters"),
    (EXEC, "Url", MISSING, "Url: is required"),
    (EXEC, "Url", LONG_URL, "Url: at most 1024 characters"),
    (EXEC, "Url", 80, "Url: must be a string"),
    (EXEC, "AlgoFilePackageID", MISSING, "AlgoFilePackageID: is required"),
    (EXEC, "AlgoFilePackageID", "a" * 41, "AlgoFilePackageID: at most 40 characters"),
    (EXEC, "AlgoFilePackageID", 42, "AlgoFilePackageID: must be a string"),
    # 表B.1
    (CAD_PUSH, "Url", MISSING, "Url: is required"),
    (CAD_PUSH, "Url", LONG_URL, "Url: at most 1024 characters"),
    (CAD_PUSH, "Url", 1, "Url: must be a string"),
    (CAD_PUSH, "AlgoFilePackageID", MISSING, "AlgoFilePackageID: is required"),
    (CAD_PUSH, "AlgoFilePackageID", "a" * 41, "AlgoFilePackageID: at most 40 characters"),
    (CAD_PUSH, "AlgoFilePackageID", 7, "AlgoFilePackageID: must be a string"),
    (CAD_PUSH, "AuthAddress", "a" * 1025, "AuthAddress: at most 1024 characters"),
    (CAD_PUSH, "AuthAddress", ["127.0.0.1:8080"], "AuthAddress: must be a string"),
    (CAD_PUSH, "LicenseFile", "a" * 1025, "LicenseFile: at most 1024 characters"),
    (CAD_PUSH, "LicenseFile", False, "LicenseFile: must be a string"),
]


def _rule_id(rule: tuple[str, str, Any, str]) -> str:
    uri, field, value, _ = rule
    shown = "missing" if value is MISSING else type(value).__name__
    if isinstance(value, str):
        shown = f"len{len(value)}" if len(value) > 12 else repr(value)
    return f"{uri.rsplit('/', 1)[-1]}-{field}-{shown}"


@pytest.mark.parametrize("rule", RULES, ids=[_rule_id(rule) for rule in RULES])
def test_each_rule_of_the_tables_is_refused_with_400_naming_the_field(
    api: Any, rule: tuple[str, str, Any, str]
) -> None:
    uri, field, value, words = rule
    body = dict(VALID[uri])
    if value is MISSING:
        del body[field]
    else:
        body[field] = value

    response = api.post(uri, body, **{"X-Request-ID": "req-rule-1"})

    assert response.status_code == 400, response.body
    assert words in response.body["Message"]
    assert response.body["RequestID"] == "req-rule-1"
    assert {"Field": field, "Message": words.split(": ", 1)[1]} == {
        "Field": response.body["Data"]["Errors"][0]["Field"],
        "Message": response.body["Data"]["Errors"][0]["Message"][: len(words.split(": ", 1)[1])],
    }
    if uri.startswith("/CAD/"):
        assert response.body["Code"] == "40000"
    else:
        assert response.body["Code"] == 40000
    assert AlgoFilePackage.objects.count() == 0


@pytest.mark.parametrize("uri", [PUSH, SEARCH, EXEC, CAD_PUSH])
def test_the_valid_bodies_of_the_rules_are_accepted(api: Any, uri: str, settings: Any) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"
    if uri == EXEC:
        api.post(PUSH, VALID[PUSH])

    response = api.post(uri, VALID[uri])

    assert response.status_code == 200, response.body
    assert response.body["Code"] in (0, "0")


def test_values_at_the_maximum_length_are_accepted(api: Any, settings: Any) -> None:
    settings.FACILITY_QUEUE_MODE = "manual"
    url = "http://127.0.0.1/" + "a" * 1007
    assert len(url) == 1024
    body = {"AlgoFilePackageID": "a" * 40, "MD5": "a" * 32, "Url": url, "Name": "n" * 128}

    response = api.post(PUSH, body)

    assert response.status_code == 200, response.body
    row = AlgoFilePackage.objects.get()
    assert (row.package_id, row.url, row.requested_name) == ("a" * 40, url, "n" * 128)


def test_several_bad_fields_are_all_named(api: Any) -> None:
    response = api.post(PUSH, {"AlgoFilePackageID": "a" * 41, "Url": 5})

    message = response.body["Message"]
    assert "AlgoFilePackageID: at most 40 characters" in message
    assert "Url: must be a string" in message


@pytest.mark.parametrize("uri", [PUSH, SEARCH, EXEC, CAD_PUSH])
def test_a_body_that_is_not_an_object_is_400(api: Any, uri: str) -> None:
    response = api.post(uri, ["AlgoFilePackageID"])

    assert response.status_code == 400
    assert response.body["Code"] in (40000, "40000")
    assert "JSON object" in response.body["Message"]


@pytest.mark.parametrize("uri", [PUSH, CAD_PUSH])
def test_a_body_that_is_not_json_is_400(api: Any, uri: str) -> None:
    response = api.post(uri, raw=b"{not json")

    assert response.status_code == 400
    assert response.body["Code"] in (40001, "40001")
    assert "not valid JSON" in response.body["Message"]


def test_a_body_of_another_media_type_is_415(api: Any) -> None:
    response = api.post(PUSH, raw=b"<AlgoFilePackageID/>", content_type="application/xml")

    assert response.status_code == 415
    assert response.body["Code"] == 41500
