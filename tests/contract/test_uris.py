"""Walks every URI of INTERFACES.md (docs/standard/, the project's copy of
the cleaned contract) that exists so far, and checks envelope, Code type and
field names against the tables."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.urls import Resolver404, resolve

from algorithms.choices import PackageStatus, TransferState
from algorithms.models import AlgoFilePackage

SPEC = Path(__file__).resolve().parents[2] / "docs" / "standard" / "INTERFACES.md"
ROW = re.compile(r"^\| (\d+) \| (GET|POST|PUT|DELETE)[^|]* \| (/\S+) \|", re.MULTILINE)
SHAPE = re.compile(r"^\*\*(\w+)\*\* \(表([A-Z])\.\d+\): (.+)$")
PROBE_ID = "contract-probe"

# Appendix of each table's bodies -> Code's JSON type (INTERFACES.md §0 Decision)
STRING_CODE_TABLES = set(range(2, 8)) | set(range(16, 27))

# every interface of the standard is served (表8–15 are the CAD task URIs,
# listed in INTERFACES.md as one row)
REQUIRED = set(range(1, 15)) | set(range(16, 44))


def interfaces() -> list[tuple[int, str, str]]:
    text = SPEC.read_text(encoding="utf-8")
    rows = [
        (int(number), method, uri.replace("<", "{").replace(">", "}"))
        for number, method, uri in ROW.findall(text)
    ]
    # 表8–15 are the CAP task interfaces (表37–43) on /CAD (one row in the table)
    cad_tasks = [
        (number - 29, method, uri.replace("/CAP/", "/CAD/"))
        for number, method, uri in rows
        if 37 <= number <= 43
    ]
    return rows + cad_tasks


def shapes() -> dict[str, list[str]]:
    """Field names of each body the tables define, in table order."""
    result = {}
    paragraphs: list[str] = []
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        if line.startswith("**") or not line.strip() or not paragraphs:
            paragraphs.append(line)
        else:
            paragraphs[-1] += " " + line
    for match in filter(None, map(SHAPE.match, paragraphs)):
        name, _appendix, fields = match.groups()
        names = [part.strip().split(" ")[0] for part in fields.split(" · ")]
        result[name] = [n for n in names if re.fullmatch(r"[A-Z]\w+", n)]
    return result


def concrete(uri: str) -> str:
    return re.sub(r"\{\w+\}", PROBE_ID, uri)


def exists(uri: str) -> bool:
    try:
        resolve(concrete(uri))
    except Resolver404:
        return False
    return True


def test_the_contract_lists_every_table():
    numbers = {number for number, _, _ in interfaces()}
    assert numbers >= set(range(1, 15)) | set(range(16, 44))


def test_every_required_uri_exists():
    present = {number for number, _, uri in interfaces() if exists(uri)}
    assert present >= REQUIRED, sorted(REQUIRED - present)


@pytest.mark.parametrize(
    ("number", "method", "uri"),
    [row for row in interfaces() if exists(row[2])],
    ids=lambda value: str(value),
)
def test_existing_uri_answers_the_envelope_with_its_code_type(api, number, method, uri):
    response = api.call(method.lower(), concrete(uri), {} if method in ("POST", "PUT") else None)
    assert response.status_code < 500
    body = response.body
    assert set(body) <= {"Code", "Message", "Data", "RequestID"}
    assert {"Code", "Message", "RequestID"} <= set(body)
    expected = str if number in STRING_CODE_TABLES else int
    assert type(body["Code"]) is expected, (number, body)
    assert (body["Code"] in (0, "0")) == (response.status_code == 200)


@pytest.fixture
def complete_package() -> AlgoFilePackage:
    return AlgoFilePackage.objects.create(
        package_id="pkg-1",
        url="http://127.0.0.1:9/p.tar",
        transfer_state=TransferState.DONE,
        status=PackageStatus.COMPLETE,
        name="people",
        version="1.0",
        author="acme",
        tags=["person"],
        bin={"Type": "image", "RemoteUri": "", "LocalUri": "image.tar"},
        runtime={"Cmd": "run", "Env": [{"Name": "A", "Value": "1"}], "Xpu": []},
    )


def test_package_search_records_have_exactly_the_table_fields(api, complete_package):
    body = api.post("/CAP/AlgoFilePackages:search", {}).body
    assert list(body["Data"]) == ["PageNumber", "PageSize", "TotalSize", "Records"]
    record = body["Data"]["Records"][0]
    assert list(record) == shapes()["AlgoFilePackageSearchRecord"]


def test_package_detail_has_the_table_fields_and_documented_extensions(api, complete_package):
    data = api.get("/CAP/AlgoFilePackages/pkg-1").body["Data"]
    table = [*shapes()["AlgoFilePackageSearchRecord"], "Tags", "Bin", "AlgoRuntime"]
    extensions = ["Progress", "StatusReason"]  # docs/api-conventions.md
    assert list(data) == table + extensions
    assert list(data["Bin"]) == ["Type", "RemoteUri", "LocalUri"]
    assert list(data["AlgoRuntime"]) == ["Cmd", "Env", "Xpu"]


def test_push_answer_data_is_the_table_shape(api, settings):
    settings.FACILITY_QUEUE_MODE = "manual"
    body = api.post(
        "/CAP/AlgoFilePackages",
        {"AlgoFilePackageID": "p2", "Url": "http://127.0.0.1:9/p.tar"},
    ).body
    assert body["Data"] == {"AlgoFilePackageID": "p2"}
    assert body["Code"] == 0
