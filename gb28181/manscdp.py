"""MANSCDP XML bodies (GB/T 28181 附录A): Query/Notify/Response documents.

Bodies arrive as GB2312/GBK or UTF-8; the XML declaration's encoding decides
(GB2312 is decoded as GB18030, its superset, since devices put GBK characters
in "GB2312" documents)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9_.:-]+)[\"'][^>]*\?>")
_ANY_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")
_GB = {"gb2312", "gbk", "gb18030", "cp936", "euc-cn"}


class ManscdpError(ValueError):
    pass


def declared_encoding(body: bytes) -> str:
    match = _DECLARATION.match(body)
    name = match.group(1).decode("ascii").lower() if match else "utf-8"
    return "gb18030" if name in _GB else name


def parse(body: bytes) -> ET.Element:
    """The document element of a MANSCDP body."""
    encoding = declared_encoding(body)
    try:
        text = body.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = body.decode("gb18030", errors="replace")
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise ManscdpError("DTDs and entities are not accepted")
    text = _ANY_DECLARATION.sub("", text, count=1)
    try:
        return ET.fromstring(text)  # noqa: S314 - no DTD (checked above); expat ≥ 2.4
    except ET.ParseError as exc:
        raise ManscdpError(f"bad XML: {exc}") from None


def text(element: ET.Element, tag: str) -> str:
    return (element.findtext(tag) or "").strip()


def build(kind: str, cmd_type: str, sn: int, device_id: str, **fields: str) -> bytes:
    """<Query>/<Notify>/<Response> with CmdType, SN, DeviceID and extra fields,
    GB2312-declared as the standard's examples are."""
    root = ET.Element(kind)
    for tag, value in (("CmdType", cmd_type), ("SN", str(sn)), ("DeviceID", device_id)):
        ET.SubElement(root, tag).text = value
    for tag, value in fields.items():
        ET.SubElement(root, tag).text = value
    body = ET.tostring(root, encoding="unicode")
    return ('<?xml version="1.0" encoding="GB2312"?>\r\n' + body + "\r\n").encode("gb18030")


CATALOG_FIELDS = {
    "DeviceID": "channel_id",
    "Name": "name",
    "Manufacturer": "manufacturer",
    "Model": "model",
    "Status": "status",
    "ParentID": "parent_id",
    "CivilCode": "civil_code",
    "Address": "address",
}


def catalog_items(root: ET.Element) -> tuple[int, list[dict[str, Any]]]:
    """(SumNum, the items of this message) of a Catalog response."""
    try:
        total = int(text(root, "SumNum") or 0)
    except ValueError:
        total = 0
    items = []
    for item in root.iterfind("DeviceList/Item"):
        row = {field: text(item, tag) for tag, field in CATALOG_FIELDS.items()}
        if row["channel_id"]:
            items.append(row)
    return total, items
