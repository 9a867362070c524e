"""MANSCDP XML bodies (GB/T 28181 §A): Keepalive, Catalog and DeviceInfo, in GB2312/GB18030 or UTF-8.

Bodies are decoded by hand before parsing (expat does not read multi-byte encodings such as GB2312), and any
DTD is refused: a device's XML never needs entities, and refusing them rules out entity-expansion attacks.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from jifang.gb28181.sip import SipError

CONTENT_TYPE = "Application/MANSCDP+xml"


@dataclass
class ChannelItem:
    id: str
    name: str = ""
    manufacturer: str = ""
    model: str = ""
    parent: str = ""
    status: str = ""
    ptz_type: int | None = None


@dataclass
class Manscdp:
    root: str  # Notify | Query | Response | Control
    cmd: str  # Keepalive | Catalog | DeviceInfo | ...
    sn: int
    device_id: str
    fields: dict[str, str] = field(default_factory=dict)
    items: list[ChannelItem] = field(default_factory=list)
    sum_num: int | None = None


def decode(body: bytes) -> str:
    declared = re.search(rb'encoding\s*=\s*["\']([A-Za-z0-9_-]+)', body[:200])
    name = declared.group(1).decode().lower() if declared else "utf-8"
    if name in ("gb2312", "gbk", "gb18030"):
        name = "gb18030"  # a superset of both; devices label GB18030 text as GB2312
    try:
        return body.decode(name)
    except (LookupError, UnicodeDecodeError):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            return body.decode("gb18030", "replace")


def parse(body: bytes) -> Manscdp:
    text = decode(body)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise SipError("MANSCDP body with a DTD refused")
    text = re.sub(r"^\s*<\?xml[^>]*\?>", "", text)
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise SipError(f"MANSCDP body is not XML: {exc}") from None

    def child(node: ET.Element, name: str) -> str:
        found = node.find(name)
        return (found.text or "").strip() if found is not None else ""

    try:
        sn = int(child(root, "SN") or 0)
    except ValueError:
        sn = 0
    message = Manscdp(root.tag, child(root, "CmdType"), sn, child(root, "DeviceID"))
    for node in root:
        if len(node) == 0:
            message.fields[node.tag] = (node.text or "").strip()
    if child(root, "SumNum").isdigit():
        message.sum_num = int(child(root, "SumNum"))
    device_list = root.find("DeviceList")
    if device_list is not None:
        for item in device_list.findall("Item"):
            info = item.find("Info")
            ptz = child(item, "PTZType") or (child(info, "PTZType") if info is not None else "")
            message.items.append(ChannelItem(
                id=child(item, "DeviceID"), name=child(item, "Name"), manufacturer=child(item, "Manufacturer"),
                model=child(item, "Model"), parent=child(item, "ParentID"), status=child(item, "Status"),
                ptz_type=int(ptz) if ptz.isdigit() else None))
    return message


def _xml(root: str, cmd: str, sn: int, device_id: str, inner: str = "", encoding: str = "GB2312") -> bytes:
    text = (f'<?xml version="1.0" encoding="{encoding}"?>\r\n<{root}>\r\n<CmdType>{cmd}</CmdType>\r\n'
            f"<SN>{sn}</SN>\r\n<DeviceID>{escape(device_id)}</DeviceID>\r\n{inner}</{root}>\r\n")
    return text.encode("gb18030" if encoding.upper() in ("GB2312", "GB18030") else "utf-8")


def query(cmd: str, sn: int, device_id: str) -> bytes:
    return _xml("Query", cmd, sn, device_id)


def keepalive(sn: int, device_id: str) -> bytes:
    return _xml("Notify", "Keepalive", sn, device_id, "<Status>OK</Status>\r\n")


def catalog_response(sn: int, device_id: str, sum_num: int, items: list[ChannelItem]) -> bytes:
    rows = "".join(
        f"<Item>\r\n<DeviceID>{escape(i.id)}</DeviceID>\r\n<Name>{escape(i.name)}</Name>\r\n"
        f"<Manufacturer>{escape(i.manufacturer)}</Manufacturer>\r\n<Model>{escape(i.model)}</Model>\r\n"
        f"<ParentID>{escape(i.parent)}</ParentID>\r\n<Status>{escape(i.status)}</Status>\r\n"
        + (f"<Info>\r\n<PTZType>{i.ptz_type}</PTZType>\r\n</Info>\r\n" if i.ptz_type is not None else "")
        + "</Item>\r\n" for i in items)
    inner = f'<SumNum>{sum_num}</SumNum>\r\n<DeviceList Num="{len(items)}">\r\n{rows}</DeviceList>\r\n'
    return _xml("Response", "Catalog", sn, device_id, inner)


def device_info_response(sn: int, device_id: str, name: str, manufacturer: str, model: str, firmware: str,
                         channels: int) -> bytes:
    inner = (f"<Result>OK</Result>\r\n<DeviceName>{escape(name)}</DeviceName>\r\n"
             f"<Manufacturer>{escape(manufacturer)}</Manufacturer>\r\n<Model>{escape(model)}</Model>\r\n"
             f"<Firmware>{escape(firmware)}</Firmware>\r\n<Channel>{channels}</Channel>\r\n")
    return _xml("Response", "DeviceInfo", sn, device_id, inner)
