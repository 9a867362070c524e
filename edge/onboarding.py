"""Registering a camera the way a field technician does: probe it over ONVIF, check that its stream opens,
check its clock, then store it in the registry (with its password encrypted)."""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from jifang.recorder.ffmpeg import check_stream, url_with_credentials

from jifang.errors import CameraClockSkewError, CameraError
from jifang.registry import NewCamera, Registry

log = logging.getLogger("jifang.onboarding")

CLOCK_TOLERANCE_SECONDS = 2.0  # segment times and evidence depend on the camera clock
CLOCK_REFUSAL_SECONDS = 60.0  # beyond this the camera's own timestamps (OSD, events) would mislead
# where cameras live unless the dashboard is told otherwise: private networks, never loopback or link-local
# (the dashboard's own database, the cloud metadata service)
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


@dataclass
class Registration:
    camera: NewCamera
    warnings: list[str]


def split_host_port(text: str, default_port: int = 80) -> tuple[str, int]:
    host, _, port = text.rpartition(":") if text.count(":") == 1 else (text, "", "")
    if not host:
        return text, default_port
    try:
        return host, int(port)
    except ValueError:
        raise CameraError(f"{text!r} is not HOST[:PORT]") from None


def camera_target(endpoint: str, networks: Sequence[str]) -> str:
    """``endpoint`` as ``IP:PORT`` when its address lies in ``networks``, else a CameraError. The caller probes
    the returned IP, not the name, so a DNS answer that changes after this check cannot redirect the probe."""
    host, port = split_host_port(endpoint)
    allowed = [ipaddress.ip_network(n, strict=False) for n in networks]
    try:
        address = ipaddress.ip_address(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][4][0])
    except (OSError, IndexError, ValueError):
        raise CameraError(f"{endpoint}: the host name does not resolve") from None
    if not any(address in network for network in allowed):
        raise CameraError(f"{endpoint}: {address} is outside the camera networks this dashboard may probe")
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def from_probe(endpoint: str, username: str, password: str, timeout: float = 5.0) -> NewCamera:
    """A NewCamera filled from an ONVIF probe (identity left for the caller: id, name, grid, tier)."""
    from jifang.edge.onvif.client import probe  # deferred: zeep and lxml, only when a camera is probed

    host, port = split_host_port(endpoint)
    result = probe(host, port, username, password, timeout=timeout)
    return NewCamera(
        id="", name="", grid="", tier="", main_rtsp_url=result.main_stream_uri, username=username,
        password=password or None, onvif_endpoint=f"{host}:{port}", sub_rtsp_url=result.sub_stream_uri or "",
        snapshot_uri=result.snapshot_uri or "", manufacturer=result.manufacturer, model=result.model,
        firmware=result.firmware, serial=result.serial, clock_offset_seconds=result.clock_offset_seconds,
    )


def register(registry: Registry, camera: NewCamera, actor: str, at: datetime, ffprobe: str = "ffprobe",
             check: Callable[[str, str, str], None] | None = None, stream_check: bool = True,
             allow_clock_offset: bool = False) -> Registration:
    """Check the clock and the stream (a short ffprobe), then store. Nothing is stored when a check fails."""
    warnings = []
    offset = camera.clock_offset_seconds
    if offset is not None and abs(offset) > CLOCK_REFUSAL_SECONDS and not allow_clock_offset:
        raise CameraClockSkewError(
            f"camera {camera.onvif_endpoint or camera.id}: its clock is {offset:+.0f} s off — set its NTP server "
            "and probe again (or register anyway with --allow-clock-offset)")
    if stream_check:
        url = url_with_credentials(camera.main_rtsp_url, camera.username or None, camera.password)
        (check or (lambda probe_tool, cid, u: check_stream(probe_tool, cid, u, timeout_s=8.0)))(
            ffprobe, camera.id, url)
    if offset is not None and abs(offset) > CLOCK_TOLERANCE_SECONDS:
        warnings.append(f"camera {camera.id}: its clock is {offset:+.1f} s off; segment times and evidence come "
                        "from the recorder's clock, but fix the camera's NTP setting")
    registry.add_camera(camera, actor=actor, at=at)
    for warning in warnings:
        log.warning("%s", warning)
    return Registration(camera, warnings)
