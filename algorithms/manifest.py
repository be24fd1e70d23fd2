"""algo.yaml: the package manifest (docs/algo-package.md).

Accepts the spellings of the standard's 表I.7 example (`remote_uri`,
`algo_runtime`, `cmd`, `Type: Image`) and validates with messages that name
the field, e.g. `AlgoRuntime.Xpu[0].Quota: must be a number`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rest_framework import serializers

from algorithms.choices import ExecKind
from facility.api.errors import validation_message
from facility.api.fields import (
    EnumField,
    StrictCharField,
    StrictFloatField,
    StrictIntegerField,
    StrictListField,
    text,
)
from facility.api.serializers import ContractSerializer

MANIFEST_NAMES = ("algo.yaml", "algo.yml")
MD5_PATTERN = r"^[0-9a-fA-F]{32}$"


class ManifestError(Exception):
    pass


class _NumbersAsTextLoader(yaml.SafeLoader):
    """Plain scalars that look like numbers stay text: vendors write
    `Version: 2.10` and `Accelerator: 2070` unquoted, and the manifest's
    strings must keep what was written (2.10 is not 2.1). Numeric fields
    parse their text themselves."""


_NumbersAsTextLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class ManifestInteger(StrictIntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str):
            try:
                data = int(data.strip().replace("_", ""), 0)
            except ValueError:
                self.fail("invalid")
        return super().to_internal_value(data)


class ManifestNumber(StrictFloatField):
    def to_internal_value(self, data: Any) -> float:
        if isinstance(data, str):
            try:
                data = float(data.strip().replace("_", ""))
            except ValueError:
                self.fail("invalid")
        return super().to_internal_value(data)


class CapacitiesSerializer(ContractSerializer):
    Stream_Video_Quota = ManifestInteger(required=False, default=0, min_value=0)
    Stream_Capture_Quota = ManifestInteger(required=False, default=0, min_value=0)
    Analyze_Quota = ManifestInteger(required=False, default=0, min_value=0)


class XpuRequirementSerializer(ContractSerializer):
    Quota = ManifestNumber(required=False, default=0.0, min_value=0.0, max_value=64.0)
    Limit = ManifestNumber(required=False, default=0.0, min_value=0.0, max_value=64.0)
    Vendor = text(64, required=False, default="")
    Accelerator = text(64, required=False, default="")
    Capacities = CapacitiesSerializer(required=False)
    Resolution = text(32, required=False, default="")


class EnvVarSerializer(ContractSerializer):
    Name = text(128, validators=[])
    Value = text(1024, required=False, default="")

    def validate_Name(self, value: str) -> str:
        if not value.replace("_", "a").isalnum() or value[0].isdigit():
            raise serializers.ValidationError("must be a variable name (letters, digits, '_')")
        return value


class RuntimeSerializer(ContractSerializer):
    Cmd = text(1024, required=False, default="")
    Env = EnvVarSerializer(many=True, required=False, default=list)
    Xpu = XpuRequirementSerializer(many=True, required=False, default=list)


class BinSerializer(ContractSerializer):
    Type = EnumField([ExecKind.IMAGE.value, ExecKind.ARTIFACT.value])
    RemoteUri = text(1024, required=False, default="")
    LocalUri = text(1024, required=False, default="")
    MD5 = StrictCharField(required=False, default="", allow_blank=True, max_length=32)

    def validate_LocalUri(self, value: str) -> str:
        parts = value.replace("\\", "/").split("/")
        if value.startswith("/") or ".." in parts:
            raise serializers.ValidationError("must be a path inside the package")
        return value

    def validate_MD5(self, value: str) -> str:
        if value and (len(value) != 32 or any(c not in "0123456789abcdefABCDEF" for c in value)):
            raise serializers.ValidationError("must be 32 hexadecimal digits")
        return value.lower()


class ManifestSerializer(ContractSerializer):
    Name = text(128)
    Version = text(20)
    Author = text(20, required=False, default="")
    Description = text(1024, required=False, default="")
    Tags = StrictListField(child=text(64), required=False, default=list, max_length=64)
    Bin = BinSerializer()
    AlgoRuntime = RuntimeSerializer(required=False)


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    author: str
    description: str
    tags: list[str]
    bin: dict[str, Any]
    runtime: dict[str, Any]


def _refuse_aliases(text_: str) -> None:
    """YAML anchors and aliases are how 'billion laughs' bombs expand; a
    manifest has no need of them."""
    for event in yaml.parse(text_, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise ManifestError("algo.yaml: YAML aliases (*name) are not allowed")


def parse_manifest(text_: str) -> Manifest:
    try:
        _refuse_aliases(text_)
        document = yaml.load(text_, Loader=_NumbersAsTextLoader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as error:
        raise ManifestError(f"algo.yaml is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ManifestError("algo.yaml: the document must be a mapping of fields")
    serializer = ManifestSerializer(data=document)
    if not serializer.is_valid():
        message, _ = validation_message(serializer.errors)
        raise ManifestError(f"algo.yaml: {message}")
    data = serializer.validated_data
    runtime = _plain(data.get("AlgoRuntime") or {"Cmd": "", "Env": [], "Xpu": []})
    for xpu in runtime.get("Xpu", []):
        xpu.setdefault(
            "Capacities", {"Stream_Video_Quota": 0, "Stream_Capture_Quota": 0, "Analyze_Quota": 0}
        )
    return Manifest(
        name=data["Name"],
        version=data["Version"],
        author=data["Author"],
        description=data["Description"],
        tags=list(data["Tags"]),
        bin=_plain(data["Bin"]),
        runtime=runtime,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def find_manifest(root: Path) -> Path:
    """algo.yaml at the root, or inside the archive's single top directory."""
    for name in MANIFEST_NAMES:
        if (root / name).is_file():
            return root / name
    entries = [entry for entry in root.iterdir() if not entry.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink():
        for name in MANIFEST_NAMES:
            if (entries[0] / name).is_file():
                return entries[0] / name
    raise ManifestError("algo.yaml not found at the top of the package")


def read_manifest(root: Path, max_bytes: int) -> tuple[Manifest, Path]:
    path = find_manifest(root)
    if path.is_symlink():
        raise ManifestError("algo.yaml must be a regular file, not a link")
    size = path.stat().st_size
    if size > max_bytes:
        raise ManifestError(f"algo.yaml is {size} bytes, over the limit of {max_bytes}")
    try:
        text_ = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError("algo.yaml is not UTF-8 text") from None
    return parse_manifest(text_), path.parent
