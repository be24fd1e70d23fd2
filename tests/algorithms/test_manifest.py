"""algo.yaml: missing, broken or invalid manifests end in Status 4 with a
reason that names the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.algorithms.conftest import Packages, files_under
from tests.support import packages as pkg


def push_manifest(packages: Packages, text: bytes, name: str = "algo.yaml") -> dict[str, Any]:
    packages.push(pkg.tar_of({name: text, "bin/detector": pkg.EXECUTABLE}))
    return packages.detail()


def push_document(packages: Packages, document: dict[str, Any]) -> dict[str, Any]:
    return push_manifest(packages, pkg.manifest_text(document))


def test_a_package_without_algo_yaml_ends_in_status_4(packages: Packages, store: Path) -> None:
    data = push_manifest(packages, b"Name: x\n", name="README.md")

    assert data["Status"] == 4
    assert "algo.yaml not found" in data["StatusReason"]
    assert files_under(store) == set()


def test_algo_yml_is_accepted_as_the_manifest_name(packages: Packages) -> None:
    data = push_manifest(packages, pkg.manifest_text(), name="algo.yml")

    assert data["Status"] == 2


def test_invalid_yaml_ends_in_status_4(packages: Packages) -> None:
    data = push_manifest(packages, b"Name: [unclosed\nVersion: 1\n")

    assert data["Status"] == 4
    assert "not valid YAML" in data["StatusReason"]


def test_a_yaml_alias_bomb_ends_in_status_4(packages: Packages) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for index in range(1, 9):
        previous = chr(ord("a") + index - 1)
        current = chr(ord("a") + index)
        lines.append(f"{current}: &{current} [{', '.join(['*' + previous] * 9)}]")
    data = push_manifest(packages, ("\n".join(lines) + "\n").encode())

    assert data["Status"] == 4
    assert "aliases" in data["StatusReason"]


def test_a_manifest_that_is_not_a_mapping_ends_in_status_4(packages: Packages) -> None:
    data = push_manifest(packages, b"- just\n- a list\n")

    assert data["Status"] == 4
    assert "mapping" in data["StatusReason"]


def test_a_manifest_that_is_not_utf8_ends_in_status_4(packages: Packages) -> None:
    data = push_manifest(packages, "Name: caf\u00e9\n".encode("latin-1"))

    assert data["Status"] == 4
    assert "UTF-8" in data["StatusReason"]


def test_a_manifest_over_its_size_limit_ends_in_status_4(packages: Packages, settings: Any) -> None:
    settings.PACKAGE_MAX_MANIFEST_BYTES = 100
    data = push_manifest(packages, pkg.manifest_text())

    assert data["Status"] == 4
    assert "over the limit of 100" in data["StatusReason"]


def test_algo_yaml_as_a_link_ends_in_status_4(packages: Packages) -> None:
    archive = pkg.tar_of(
        {"real.yaml": pkg.manifest_text(), "bin/detector": pkg.EXECUTABLE},
        extra=[pkg.link_info("algo.yaml", "real.yaml")],
    )
    packages.push(archive)

    data = packages.detail()
    assert data["Status"] == 4
    assert "not a link" in data["StatusReason"]


def _xpu(**fields: Any) -> dict[str, Any]:
    document = pkg.manifest()
    document["AlgoRuntime"]["Xpu"][0].update(fields)
    return document


def _bin(**fields: Any) -> dict[str, Any]:
    document = pkg.manifest()
    document["Bin"].update(fields)
    return document


def _without(field: str) -> dict[str, Any]:
    document = pkg.manifest()
    del document[field]
    return document


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (_xpu(Quota="half"), "AlgoRuntime.Xpu[0].Quota: must be a number"),
        (_xpu(Limit=True), "AlgoRuntime.Xpu[0].Limit: must be a number"),
        (_xpu(Quota=-1), "AlgoRuntime.Xpu[0].Quota: must be at least"),
        (_xpu(Vendor=["NVIDIA"]), "AlgoRuntime.Xpu[0].Vendor: must be a string"),
        (
            _xpu(Capacities={"Stream_Video_Quota": "six"}),
            "AlgoRuntime.Xpu[0].Capacities.Stream_Video_Quota: must be an integer",
        ),
        (_without("Name"), "Name: is required"),
        (_without("Version"), "Version: is required"),
        (_without("Bin"), "Bin: is required"),
        (pkg.manifest(Version="1" * 21), "Version: at most 20 characters"),
        (pkg.manifest(Author="a" * 21), "Author: at most 20 characters"),
        (pkg.manifest(Name="n" * 129), "Name: at most 128 characters"),
        (pkg.manifest(Name=""), "Name: must not be empty"),
        (pkg.manifest(Tags="safety"), "Tags"),
        (pkg.manifest(Tags=[["nested"]]), "Tags"),
        (_bin(Type="exe"), "Bin.Type: must be one of: image, artifact"),
        (_bin(LocalUri="../outside"), "Bin.LocalUri: must be a path inside the package"),
        (_bin(LocalUri="/usr/bin/sh"), "Bin.LocalUri: must be a path inside the package"),
        (_bin(MD5="xyz"), "Bin.MD5: must be 32 hexadecimal digits"),
        (
            pkg.manifest(AlgoRuntime={"Env": [{"Name": "1BAD", "Value": "x"}]}),
            "AlgoRuntime.Env[0].Name",
        ),
        (pkg.manifest(AlgoRuntime={"Xpu": "lots"}), "AlgoRuntime.Xpu"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_a_manifest_with_a_bad_field_ends_in_status_4_naming_the_field(
    packages: Packages, document: dict[str, Any], expected: str
) -> None:
    data = push_document(packages, document)

    assert data["Status"] == 4
    assert data["StatusReason"].startswith("algo.yaml: ")
    assert expected in data["StatusReason"]


def test_a_manifest_with_only_the_required_fields_is_complete(packages: Packages) -> None:
    document = {"Name": "minimal", "Version": "1", "Bin": {"Type": "image"}}
    packages.push(pkg.tar_of({"algo.yaml": pkg.manifest_text(document)}))

    data = packages.detail()
    assert data["Status"] == 1
    assert data["Author"] == ""
    assert data["Tags"] == []
    assert data["Bin"] == {"Type": "image", "RemoteUri": "", "LocalUri": ""}
    assert data["AlgoRuntime"] == {"Cmd": "", "Env": [], "Xpu": []}


def test_an_xpu_entry_without_capacities_gets_zero_capacities(packages: Packages) -> None:
    document = pkg.manifest(AlgoRuntime={"Xpu": [{"Quota": 1, "Vendor": "NVIDIA"}]})
    data = push_document(packages, document)

    assert data["Status"] == 2, data["StatusReason"]
    xpu = data["AlgoRuntime"]["Xpu"][0]
    assert xpu["Quota"] == 1.0
    assert xpu["Capacities"] == {
        "Stream_Video_Quota": 0,
        "Stream_Capture_Quota": 0,
        "Analyze_Quota": 0,
    }


def test_unquoted_numbers_in_string_fields_keep_their_written_text(packages: Packages) -> None:
    text = (
        b"Name: 2070-people\nVersion: 2.10\nAuthor: 007\n"
        b"Bin: {Type: image}\n"
        b"AlgoRuntime:\n  Xpu:\n    - Quota: 0.5\n      Accelerator: 2070\n"
        b"      Capacities: {Stream_Video_Quota: 6}\n"
    )
    packages.push(pkg.tar_of({"algo.yaml": text}))

    data = packages.detail()
    assert data["Status"] == 1, data["StatusReason"]
    assert (data["Name"], data["Version"], data["Author"]) == ("2070-people", "2.10", "007")
    xpu = data["AlgoRuntime"]["Xpu"][0]
    assert xpu["Accelerator"] == "2070"
    assert xpu["Quota"] == 0.5
    assert xpu["Capacities"]["Stream_Video_Quota"] == 6
