"""Periodic ONVIF health check of registered cameras: is the device answering, and is its clock right?

The recorder already reports the stream's state (online, auth_failed, unreachable) as it records; this
check adds what only ONVIF tells: the camera clock's offset from ours (``clock_skew`` above 2 s), for
cameras that are registered with an ONVIF endpoint. GetSystemDateAndTime needs no credentials.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime

from jifang.registry import Registry
from jifang.supervision import Worker, every

log = logging.getLogger("jifang.health")

CLOCK_SKEW_SECONDS = 2.0
REQUEST = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
    '<GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
)
TT = "{http://www.onvif.org/ver10/schema}"


def camera_utc(endpoint: str, timeout: float = 5.0) -> datetime:
    """The camera's UTC clock (ONVIF GetSystemDateAndTime at http://ENDPOINT/onvif/device_service)."""
    request = urllib.request.Request(f"http://{endpoint}/onvif/device_service", data=REQUEST.encode(),
                                     headers={"Content-Type": "application/soap+xml; charset=utf-8"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        root = ET.fromstring(response.read())
    utc = root.find(f".//{TT}UTCDateTime")
    if utc is None:
        raise ValueError("no UTCDateTime in the answer")
    date, time = utc.find(f"{TT}Date"), utc.find(f"{TT}Time")

    def part(node: ET.Element | None, name: str) -> int:
        value = node.find(f"{TT}{name}") if node is not None else None
        if value is None or value.text is None:
            raise ValueError(f"no {name} in the answer")
        return int(value.text)

    return datetime(part(date, "Year"), part(date, "Month"), part(date, "Day"), part(time, "Hour"),
                    part(time, "Minute"), part(time, "Second"), tzinfo=UTC)


def check_clocks(registry: Registry, clock: Callable[[], datetime], timeout: float = 5.0) -> dict[str, float]:
    """Measure every registered ONVIF camera's clock offset; mark cameras off by more than 2 s as clock_skew."""
    offsets = {}
    for camera in registry.cameras(enabled_only=True):
        if not camera.onvif_endpoint:
            continue
        try:
            sent = clock()
            theirs = camera_utc(camera.onvif_endpoint, timeout)
            # the camera answers in whole seconds: compare with the middle of the round trip
            ours = sent + (clock() - sent) / 2
        except (OSError, urllib.error.URLError, ET.ParseError, ValueError) as exc:
            log.info("camera %s: ONVIF clock check failed: %s", camera.id, exc)
            continue
        offset = (theirs - ours).total_seconds()
        offsets[camera.id] = offset
        if abs(offset) > CLOCK_SKEW_SECONDS + 1:  # +1: the answer's whole-second resolution
            registry.set_status(camera.id, "clock_skew", f"camera clock is {offset:+.0f} s off", clock(), offset)
        else:
            registry.set_status(camera.id, camera.status if camera.status != "clock_skew" else "online",
                                camera.status_detail if camera.status != "clock_skew" else "", clock(), offset)
    return offsets


class HealthChecker:
    def __init__(self, registry: Registry, clock: Callable[[], datetime], interval: float = 300.0) -> None:
        self.registry = registry
        self.clock = clock
        self.interval = interval
        self._worker = Worker("health", every(interval, lambda: check_clocks(self.registry, self.clock), log,
                                              "camera health check", at_once=True))

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()
