"""WS-Discovery client for ONVIF cameras: one Probe for NetworkVideoTransmitter devices, multicast on the local
segment and unicast to listed hosts (routed sites, where multicast does not cross the router), ProbeMatches
collected until the timeout.

A plain UDP socket and xml.etree: pip ``wsdiscovery`` skips loopback and never reads unicast replies, and a probe
is one datagram out and a few in.
"""

from __future__ import annotations

import logging
import random
import re
import socket
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from jifang.errors import ConfigError

log = logging.getLogger("jifang.onvif.discovery")

MULTICAST_GROUP = "239.255.255.250"
WSD_PORT = 3702
MAX_DATAGRAM = 65535

WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"

_PROBE = """<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="{wsa}" xmlns:d="{wsd}"
 xmlns:dn="http://www.onvif.org/ver10/network/wsdl">
<s:Header>
<a:Action s:mustUnderstand="1">{wsd}/Probe</a:Action>
<a:MessageID>{message_id}</a:MessageID>
<a:ReplyTo><a:Address>{wsa}/role/anonymous</a:Address></a:ReplyTo>
<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>
</s:Header>
<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>
</s:Envelope>"""


@dataclass(frozen=True)
class DiscoveredDevice:
    address: str  # EndpointReference address (urn:uuid:...): the device's stable identity
    xaddrs: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)
    types: list[str] = field(default_factory=list)
    host: str = ""  # host part of the first xaddr (the sender's IP when there is none)


def probe_message(message_id: str) -> bytes:
    return _PROBE.format(wsa=WSA, wsd=WSD, message_id=message_id).encode("utf-8")


def parse_probe_matches(data: bytes, sender: str = "") -> list[DiscoveredDevice]:
    """The devices in one WS-Discovery reply. Namespace-agnostic (matches local names) and tolerant of a
    ProbeMatch without the ProbeMatches wrapper, as ipycam sends it; anything unparseable gives []."""
    # Untrusted datagrams: refuse DTDs/entities outright rather than rely on the parser's expansion limits.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        return []
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return []
    devices = []
    for match in root.iter():
        if _local(match.tag) != "ProbeMatch":
            continue
        address = ""
        for element in match.iter():
            if _local(element.tag) == "Address" and element.text:
                address = element.text.strip()
                break
        xaddrs = _words(match, "XAddrs")
        if not address and not xaddrs:
            continue
        host = (urlsplit(xaddrs[0]).hostname or "") if xaddrs else ""
        devices.append(DiscoveredDevice(address=address or xaddrs[0], xaddrs=xaddrs, scopes=_words(match, "Scopes"),
                                        types=_words(match, "Types"), host=host or sender))
    return devices


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _words(parent: ET.Element, name: str) -> list[str]:
    for child in parent:
        if _local(child.tag) == name:
            return (child.text or "").split()
    return []


def _unicast_target(text: str, port: int) -> tuple[str, int]:
    """host, host:port, [v6]:port -> (IPv4 address, port); host names are resolved here."""
    text = text.strip()
    match = re.fullmatch(r"\[([^\]]+)\](?::(\d+))?|([^:]+)(?::(\d+))?", text)
    if not match:
        raise ValueError(f"{text!r} is not HOST or HOST:PORT")
    host = match.group(1) or match.group(3)
    target_port = int(match.group(2) or match.group(4) or port)
    address = socket.getaddrinfo(host, target_port, socket.AF_INET, socket.SOCK_DGRAM)[0][4][0]
    return address, target_port


def discover(timeout: float = 3.0, unicast_hosts: list[str] | None = None, interface: str | None = None,
             port: int = WSD_PORT, multicast: bool = True) -> list[DiscoveredDevice]:
    """Send one WS-Discovery Probe (Types dn:NetworkVideoTransmitter) to the multicast group (when ``multicast``;
    from ``interface``, a local IPv4 address, if given) and to each of ``unicast_hosts`` (host or host:port), and
    return the devices that answered within ``timeout`` seconds, one per endpoint address, sorted by host."""
    message_id = f"urn:uuid:{uuid.uuid4()}"
    message = probe_message(message_id)
    targets: list[tuple[str, int]] = []
    for text in unicast_hosts or []:
        try:
            targets.append(_unicast_target(text, port))
        except (OSError, ValueError) as exc:
            # One bad entry in a site's host list must not hide the cameras that do answer.
            log.warning("WS-Discovery: skipping %r: %s", text, exc)

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        try:
            # Bound to the chosen interface (or all) on an ephemeral port: replies come back to this port.
            sock.bind((interface or "", 0))
            if multicast:
                # TTL 1: the multicast probe stays on the local segment (WS-Discovery's default); routed sites
                # use unicast_hosts.
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
                if interface:
                    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
        except OSError as exc:
            raise ConfigError(f"WS-Discovery interface {interface!r} is not an IPv4 address of this machine "
                              f"({exc.strerror or exc})") from None
            targets.append((MULTICAST_GROUP, port))
        if not targets:
            return []
        # UDP may drop a datagram: WS-Discovery repeats the probe (same MessageID) after a short random delay.
        _send(sock, message, targets)
        repeat_at = time.monotonic() + min(timeout / 4, random.uniform(0.05, 0.25))
        deadline = time.monotonic() + timeout
        repeated = False
        found: dict[str, DiscoveredDevice] = {}
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            if not repeated and now >= repeat_at:
                _send(sock, message, targets)
                repeated = True
            sock.settimeout(max(0.001, (deadline if repeated else min(deadline, repeat_at)) - now))
            try:
                data, sender = sock.recvfrom(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except (ConnectionRefusedError, ConnectionResetError):
                # An ICMP port-unreachable from one unicast host (reported on some systems): keep listening.
                continue
            for device in parse_probe_matches(data, sender[0]):
                found.setdefault(device.address, device)
    finally:
        sock.close()
    return sorted(found.values(), key=lambda d: (d.host, d.address))


def _send(sock: socket.socket, message: bytes, targets: list[tuple[str, int]]) -> None:
    for target in targets:
        try:
            sock.sendto(message, target)
        except OSError as exc:
            # e.g. no multicast route on this interface: report it, still collect replies from the others.
            log.warning("WS-Discovery: cannot send the probe to %s:%d: %s", target[0], target[1], exc)
