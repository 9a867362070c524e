"""ONVIF probe and WS-Discovery client, against real servers on 127.0.0.1 only:

- ipycam 1.3.0 (a third-party ONVIF camera simulator from PyPI): its own SOAP handler, WS-Security check and
  WS-Discovery responder, bound to loopback by the test (ipycam itself binds all interfaces and multicasts);
- jifang's OnvifSimulator (edge/onvif/simulator.py), including a camera clock 5 minutes off;
- plain sockets and http.server for the failure modes (refused, silent, HTML, canned SOAP faults);
- the npm ``onvif`` client against OnvifSimulator, proving the simulator speaks ONVIF to an independent client.

Nothing here sends multicast: discovery tests use multicast=False and unicast to loopback ports.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from jifang.edge.onvif.client import DeviceProbe, probe, wsdl_dir
from jifang.edge.onvif.discovery import discover, parse_probe_matches, probe_message

from jifang.errors import (
    CameraClockSkewError,
    CameraError,
    CameraTimeoutError,
    CameraUnauthorizedError,
    CameraUnreachableError,
    ConfigError,
    NoMediaProfileError,
    NotOnvifError,
)

PASSWORD = "pw-S3cret!42"  # distinctive, so a leak into any message or log is easy to find
NPM_DIR = Path(__file__).parent / "onvif_npm"


def _serve(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return thread


def _stop(server: ThreadingHTTPServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _assert_clean(exc: CameraError, port: int) -> None:
    """The message contract: one line, starts with the address, never the password."""
    message = str(exc)
    assert message.startswith(f"camera 127.0.0.1:{port}: "), message
    assert "\n" not in message
    assert PASSWORD not in message
    assert "Traceback" not in message


# --- ipycam ---------------------------------------------------------------------------------------------------------


def _ipycam_modules() -> types.SimpleNamespace:
    """ipycam's config, ONVIF, HTTP and discovery modules without its package __init__, which imports camera.py
    and so OpenCV (cv2): only the ONVIF side is exercised, and opencv-python must not be installed beside
    opencv-python-headless (same cv2). ipycam is installed with --no-deps; numpy is its one import here."""
    # installed by scripts/install.sh (pip install --no-deps ipycam==1.3.0; numpy from the test extras)
    assert importlib.util.find_spec("ipycam") is not None and importlib.util.find_spec("numpy") is not None, \
        "ipycam 1.3.0 (pip install --no-deps ipycam==1.3.0) and numpy are needed: run scripts/install.sh"
    if "ipycam" not in sys.modules:
        spec = importlib.util.find_spec("ipycam")
        assert spec is not None and spec.submodule_search_locations is not None
        package = types.ModuleType("ipycam")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["ipycam"] = package
    from ipycam.config import CameraConfig
    from ipycam.discovery import WSDiscoveryServer
    from ipycam.http import IPCameraHTTPHandler
    from ipycam.onvif import ONVIFService

    return types.SimpleNamespace(CameraConfig=CameraConfig, ONVIFService=ONVIFService,
                                 IPCameraHTTPHandler=IPCameraHTTPHandler, WSDiscoveryServer=WSDiscoveryServer)


class IpycamCamera:
    """ipycam's ONVIF service (its HTTP handler, templates and UsernameToken check) on 127.0.0.1 with an
    ephemeral port, plus its WS-Discovery responder on a loopback UDP port. IPCamera.start() is not used: it binds
    0.0.0.0 (HTTP and UDP 3702), joins the multicast group, multicasts Hello and starts the video pipeline."""

    def __init__(self) -> None:
        mods = _ipycam_modules()
        # local_ip is what ipycam puts in XAddrs and stream URIs; without it it finds the default route's address.
        self.config = mods.CameraConfig(local_ip="127.0.0.1", username="admin", password=PASSWORD)
        self.onvif = mods.ONVIFService(self.config)
        handler = type("LoopbackHandler", (mods.IPCameraHTTPHandler,), {
            # The handler reads .config and .onvif only for ONVIF requests.
            "camera": types.SimpleNamespace(config=self.config, onvif=self.onvif),
        })
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.http.daemon_threads = True
        self.port = self.http.server_address[1]
        self.config.onvif_port = self.port  # advertised in GetCapabilities, WS-Discovery and the snapshot URI
        self.discovery = _loopback_discovery(mods.WSDiscoveryServer, self.onvif)
        self.discovery_port = self.discovery.sock.getsockname()[1]

    def start(self) -> None:
        self.thread = _serve(self.http)
        self.discovery.start()

    def stop(self) -> None:
        self.discovery.stop()
        self.discovery.join(timeout=5)
        _stop(self.http, self.thread)


def _loopback_discovery(base: type, onvif: Any) -> Any:
    """ipycam's WSDiscoveryServer (its Probe detection and ProbeMatch reply) on a loopback UDP socket: its own
    __init__ binds ('', 3702) and joins 239.255.255.250, and run()/stop() multicast Hello/Bye."""

    class LoopbackDiscovery(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            threading.Thread.__init__(self, daemon=True)
            self.onvif = onvif
            self.running = True
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
            self.sock.bind(("127.0.0.1", 0))
            self.sock.settimeout(0.1)  # run() polls self.running between datagrams

        def _send_announcement(self, action: str) -> None:
            pass  # Hello/Bye go to the multicast group: never from a test

    return LoopbackDiscovery()


@pytest.fixture(scope="module")
def ipycam() -> Iterator[IpycamCamera]:
    camera = IpycamCamera()
    camera.start()
    yield camera
    camera.stop()


def test_probe_ipycam(ipycam: IpycamCamera) -> None:
    result = probe("127.0.0.1", ipycam.port, "admin", PASSWORD, timeout=5)
    assert (result.host, result.port) == ("127.0.0.1", ipycam.port)
    assert (result.manufacturer, result.model, result.serial) == ("PythonCam", "VirtualCam-1", "PY-000001")
    assert result.firmware == "1.3.0" and result.hardware_id
    assert [(p.token, p.encoding, p.width, p.height, p.fps) for p in result.profiles] == [
        ("Profile_Main", "H264", 1920, 1080, 30.0), ("Profile_Sub", "H264", 640, 360, 30.0)]
    assert result.main_stream_uri == "rtsp://127.0.0.1:8554/video_main"
    assert result.sub_stream_uri == "rtsp://127.0.0.1:8554/video_sub"
    assert result.snapshot_uri == f"http://127.0.0.1:{ipycam.port}/snapshot.jpg"
    # ipycam refuses even GetSystemDateAndTime without a token, so the clock comes from the authenticated retry.
    assert abs(result.clock_offset_seconds) < 2
    assert json.loads(json.dumps(result.to_dict()))["profiles"][0]["width"] == 1920


def test_probe_ipycam_wrong_password(ipycam: IpycamCamera) -> None:
    with pytest.raises(CameraUnauthorizedError, match="401 not authorized — check the user name and password") as e:
        probe("127.0.0.1", ipycam.port, "admin", "not-the-password", timeout=5)
    _assert_clean(e.value, ipycam.port)


def test_probe_ipycam_without_credentials(ipycam: IpycamCamera) -> None:
    with pytest.raises(CameraUnauthorizedError, match="needs a user name and password"):
        probe("127.0.0.1", ipycam.port, timeout=5)


def test_discover_ipycam_by_unicast(ipycam: IpycamCamera) -> None:
    devices = discover(timeout=0.5, unicast_hosts=[f"127.0.0.1:{ipycam.discovery_port}"], multicast=False)
    assert len(devices) == 1
    device = devices[0]
    assert device.address == ipycam.onvif.device_uuid
    assert device.xaddrs == [f"http://127.0.0.1:{ipycam.port}/onvif/device_service"]
    assert "dn:NetworkVideoTransmitter" in device.types
    assert device.host == "127.0.0.1"
    # ipycam's reply has no ProbeMatches wrapper (FIELD-NOTES), and its name scope is not percent-encoded:
    assert "onvif://www.onvif.org/name/Virtual" in device.scopes


# --- failure modes on plain sockets -----------------------------------------------------------------------------------


def test_unreachable_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # closed now: nothing listens there
    with pytest.raises(CameraUnreachableError, match="connection refused") as e:
        probe("127.0.0.1", port, "admin", PASSWORD, timeout=2)
    assert not isinstance(e.value, CameraTimeoutError)
    _assert_clean(e.value, port)


def test_unreachable_unknown_host_name() -> None:
    with pytest.raises(CameraUnreachableError, match="does not resolve"):
        probe("camera.invalid", 80, "admin", PASSWORD, timeout=2)


def test_timeout_when_the_server_never_answers() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(CameraTimeoutError, match="did not answer GetSystemDateAndTime within 1 s") as e:
            probe("127.0.0.1", port, "admin", PASSWORD, timeout=1.0)
        elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 2.5
    _assert_clean(e.value, port)


class _HtmlHandler(BaseHTTPRequestHandler):
    status = 200

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        if self.status == 404:
            self.send_error(404)  # http.server's own HTML error page (with a DOCTYPE)
            return
        body = b"<html><head><title>NVR</title></head><body><h1>Login</h1></body></html>"
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize("status", [200, 404])
def test_not_onvif_html_server(status: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), type("Html", (_HtmlHandler,), {"status": status}))
    thread = _serve(server)
    try:
        port = server.server_address[1]
        with pytest.raises(NotOnvifError, match=f"HTTP {status} \\(text/html\\).*not an ONVIF device service") as e:
            probe("127.0.0.1", port, "admin", PASSWORD, timeout=2)
        _assert_clean(e.value, port)
    finally:
        _stop(server, thread)


def test_not_onvif_non_http_port() -> None:
    """An RTSP (not HTTP) server on the given port, a common mix-up."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]

        def answer() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(b"RTSP/1.0 400 Bad Request\r\nCSeq: 0\r\n\r\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        with pytest.raises(NotOnvifError, match="not with HTTP"):
            probe("127.0.0.1", port, "admin", PASSWORD, timeout=2)
        thread.join(timeout=5)


# --- canned SOAP answers for cases no simulator produces ------------------------------------------------------------

_ENVELOPE = ('<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"'
             ' xmlns:tds="http://www.onvif.org/ver10/device/wsdl" xmlns:trt="http://www.onvif.org/ver10/media/wsdl"'
             ' xmlns:tt="http://www.onvif.org/ver10/schema" xmlns:ter="http://www.onvif.org/ver10/error"'
             ' xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">'
             "<env:Body>{}</env:Body></env:Envelope>")
_DATE = ("<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime><tt:DateTimeType>NTP</tt:DateTimeType>"
         "<tt:DaylightSavings>false</tt:DaylightSavings><tt:TimeZone><tt:TZ>CST-8</tt:TZ></tt:TimeZone>"
         "<tt:LocalDateTime><tt:Time><tt:Hour>{h}</tt:Hour><tt:Minute>{m}</tt:Minute><tt:Second>{s}</tt:Second>"
         "</tt:Time><tt:Date><tt:Year>{Y}</tt:Year><tt:Month>{M}</tt:Month><tt:Day>{D}</tt:Day></tt:Date>"
         "</tt:LocalDateTime></tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>")


def _fault(code: str, subcode: str, reason: str) -> str:
    return (f"<env:Fault><env:Code><env:Value>env:{code}</env:Value><env:Subcode><env:Value>{subcode}</env:Value>"
            f'</env:Subcode></env:Code><env:Reason><env:Text xml:lang="en">{reason}</env:Text></env:Reason>'
            "</env:Fault>")


class _CannedOnvif(BaseHTTPRequestHandler):
    """Answers by operation name from `answers` ({name: (status, body)}); GetSystemDateAndTime reports local time
    only (UTCDateTime is optional), in China's zone (TZ CST-8), 8 hours ahead of UTC."""

    answers: ClassVar[dict[str, tuple[int, str]]] = {}

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        request = self.rfile.read(int(self.headers["Content-Length"])).decode()
        status, body = 400, _fault("Receiver", "ter:ActionNotSupported", "Optional Action Not Implemented")
        if "GetSystemDateAndTime" in request:
            local = time.gmtime(time.time() + 8 * 3600)
            status, body = 200, _DATE.format(h=local.tm_hour, m=local.tm_min, s=local.tm_sec, Y=local.tm_year,
                                             M=local.tm_mon, D=local.tm_mday)
        for name, answer in self.answers.items():
            if f"{name}" in request:
                status, body = answer
        data = _ENVELOPE.format(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/soap+xml; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def canned() -> Iterator[Any]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(answers: dict[str, tuple[int, str]]) -> int:
        server = ThreadingHTTPServer(("127.0.0.1", 0), type("Canned", (_CannedOnvif,), {"answers": answers}))
        servers.append((server, _serve(server)))
        return server.server_address[1]

    yield start
    for server, thread in servers:
        _stop(server, thread)


def test_clock_skew_error_when_the_camera_says_the_token_expired(canned: Any) -> None:
    port = canned({"GetDeviceInformation": (400, _fault("Sender", "wsse:MessageExpired", "Message expired"))})
    with pytest.raises(CameraClockSkewError, match="refused the token as expired") as e:
        probe("127.0.0.1", port, "admin", PASSWORD, timeout=2)
    _assert_clean(e.value, port)


_DEVICE_INFO = (200, "<tds:GetDeviceInformationResponse><tds:Manufacturer>X</tds:Manufacturer><tds:Model>Y</tds:Model>"
                     "<tds:FirmwareVersion>1</tds:FirmwareVersion><tds:SerialNumber>2</tds:SerialNumber>"
                     "<tds:HardwareId>3</tds:HardwareId></tds:GetDeviceInformationResponse>")


def test_minimal_camera(canned: Any) -> None:
    """Local time only (CST-8), no GetCapabilities/GetServices (media on the device URL), one profile without a
    frame rate, no snapshot support: still a complete probe."""
    port = canned({
        "GetDeviceInformation": _DEVICE_INFO,
        "GetProfiles": (200, '<trt:GetProfilesResponse><trt:Profiles token="p0"><tt:Name>only</tt:Name>'
                             '<tt:VideoEncoderConfiguration token="v0"><tt:Name>v</tt:Name>'
                             "<tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding><tt:Resolution><tt:Width>1280</tt:Width>"
                             "<tt:Height>720</tt:Height></tt:Resolution><tt:Quality>1</tt:Quality>"
                             "</tt:VideoEncoderConfiguration></trt:Profiles></trt:GetProfilesResponse>"),
        "GetStreamUri": (200, "<trt:GetStreamUriResponse><trt:MediaUri><tt:Uri>rtsp://127.0.0.1/only</tt:Uri>"
                              "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false"
                              "</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout></trt:MediaUri>"
                              "</trt:GetStreamUriResponse>"),
    })
    result = probe("127.0.0.1", port, "admin", PASSWORD, timeout=2)
    assert abs(result.clock_offset_seconds) < 1.6  # local time converted with the POSIX zone, not taken as UTC
    assert (result.main_stream_uri, result.sub_stream_uri, result.snapshot_uri) == ("rtsp://127.0.0.1/only", None, None)
    assert [(p.token, p.width, p.height, p.fps) for p in result.profiles] == [("p0", 1280, 720, None)]


def test_no_media_profile(canned: Any) -> None:
    port = canned({"GetDeviceInformation": _DEVICE_INFO, "GetProfiles": (200, "<trt:GetProfilesResponse/>")})
    with pytest.raises(NoMediaProfileError, match="no media profile with a video encoder") as e:
        probe("127.0.0.1", port, "admin", PASSWORD, timeout=2)
    _assert_clean(e.value, port)


def test_soap_server_refusing_get_system_date_and_time_is_not_onvif(canned: Any) -> None:
    port = canned({"GetSystemDateAndTime": (500, _fault("Receiver", "ter:ActionNotSupported", "Unknown method"))})
    with pytest.raises(NotOnvifError, match="refuses ONVIF GetSystemDateAndTime"):
        probe("127.0.0.1", port, "admin", PASSWORD, timeout=2)


# --- jifang's OnvifSimulator ----------------------------------------------------------------------------------------


def _simulator_class() -> Any:
    from jifang.sim.onvif import OnvifSimulator

    return OnvifSimulator


@pytest.fixture
def simulator() -> Iterator[Any]:
    started: list[Any] = []

    def start(**kwargs: Any) -> Any:
        options: dict[str, Any] = {"rtsp_url": "rtsp://127.0.0.1:8554/main", "sub_rtsp_url": "rtsp://127.0.0.1:8554/sub",
                                   "username": "admin", "password": PASSWORD, "firmware": "V5.7.3 build 230101",
                                   "serial": "DS-2CD0001", **kwargs}
        sim = _simulator_class()(**options)
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


def _check_simulator_result(result: DeviceProbe, sim: Any) -> None:
    assert (result.manufacturer, result.model, result.firmware, result.serial) == (
        "jifang", "SimCam", "V5.7.3 build 230101", "DS-2CD0001")
    assert result.main_stream_uri == "rtsp://127.0.0.1:8554/main"
    assert result.sub_stream_uri == "rtsp://127.0.0.1:8554/sub"
    assert result.snapshot_uri == f"http://127.0.0.1:{sim.port}/snapshot.jpg"
    assert [(p.width, p.height) for p in result.profiles] == [(1920, 1080), (640, 360)]


def test_probe_simulator(simulator: Any, caplog: pytest.LogCaptureFixture) -> None:
    sim = simulator()
    with caplog.at_level(logging.DEBUG):
        result = probe("127.0.0.1", sim.port, "admin", PASSWORD, timeout=5)
    _check_simulator_result(result, sim)
    assert abs(result.clock_offset_seconds) < 1.6
    assert result.profiles[0].encoding == "H264" and result.profiles[0].fps == 25.0
    assert PASSWORD not in caplog.text


def test_probe_simulator_five_minutes_fast(simulator: Any) -> None:
    """The simulator accepts tokens within ±10 s of its clock, so this passes only with the offset applied."""
    sim = simulator(clock_offset_seconds=300)
    result = probe("127.0.0.1", sim.port, "admin", PASSWORD, timeout=5)
    _check_simulator_result(result, sim)
    assert result.clock_offset_seconds == pytest.approx(300, abs=1.6)


def test_probe_simulator_clock_hours_behind(simulator: Any) -> None:
    sim = simulator(clock_offset_seconds=-8 * 3600)
    result = probe("127.0.0.1", sim.port, "admin", PASSWORD, timeout=5)
    assert result.clock_offset_seconds == pytest.approx(-8 * 3600, abs=1.6)


def test_probe_simulator_wrong_password_with_skewed_clock(simulator: Any, caplog: pytest.LogCaptureFixture) -> None:
    sim = simulator(clock_offset_seconds=300)
    with caplog.at_level(logging.DEBUG), pytest.raises(CameraUnauthorizedError) as e:
        probe("127.0.0.1", sim.port, "admin", "wrong", timeout=5)
    _assert_clean(e.value, sim.port)
    assert "check the user name and password" in str(e.value)
    assert "camera clock is +300 s" in str(e.value)
    assert PASSWORD not in caplog.text


def test_probe_stopped_simulator_is_unreachable(simulator: Any) -> None:
    sim = simulator()
    port = sim.port
    sim.stop()
    with pytest.raises(CameraUnreachableError):
        probe("127.0.0.1", port, "admin", PASSWORD, timeout=2)


def test_discover_two_simulators_by_unicast(simulator: Any) -> None:
    first, second = simulator(discovery_port=0, serial="A1"), simulator(discovery_port=0, serial="B2")
    started = time.monotonic()
    devices = discover(timeout=1.0, multicast=False, unicast_hosts=[
        f"127.0.0.1:{first.discovery_port}", f"localhost:{second.discovery_port}",
        f"127.0.0.1:{first.discovery_port}",  # listed twice: still one device
    ])
    assert time.monotonic() - started < 1.5
    assert {d.address for d in devices} == {first.endpoint_uuid, second.endpoint_uuid}
    assert sorted(x for d in devices for x in d.xaddrs) == sorted([first.xaddr, second.xaddr])
    assert all(d.host == "127.0.0.1" and "dn:NetworkVideoTransmitter" in d.types for d in devices)
    # what discovery finds, probe onboards
    by_address = {d.address: d for d in devices}
    assert probe("127.0.0.1", second.port, "admin", PASSWORD).serial == "B2"
    assert by_address[second.endpoint_uuid].xaddrs == [second.xaddr]


# --- npm `onvif` (independent client) against OnvifSimulator ------------------------------------------------------


def test_npm_onvif_client_probes_the_simulator(simulator: Any) -> None:
    node = shutil.which("node")
    # installed by scripts/install.sh (apt nodejs npm; npm ci --prefix tests/onvif_npm)
    assert node is not None and (NPM_DIR / "node_modules" / "onvif").is_dir(), \
        "needs node and `npm ci` in tests/onvif_npm (npm onvif 0.8.3): run scripts/install.sh"
    sim = simulator(clock_offset_seconds=300)
    env = {**os.environ, "ONVIF_PASSWORD": PASSWORD}
    run = subprocess.run([node, str(NPM_DIR / "probe.js"), "127.0.0.1", str(sim.port), "admin"], env=env,
                         capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    seen = json.loads(run.stdout)
    assert (seen["manufacturer"], seen["model"], seen["firmware"], seen["serial"]) == (
        "jifang", "SimCam", "V5.7.3 build 230101", "DS-2CD0001")
    assert seen["streamUri"] == "rtsp://127.0.0.1:8554/main"
    assert seen["snapshotUri"] == f"http://127.0.0.1:{sim.port}/snapshot.jpg"
    assert [(p["token"], p["encoding"], p["width"], p["height"]) for p in seen["profiles"]] == [
        ("Profile_1", "H264", 1920, 1080), ("Profile_2", "H264", 640, 360)]
    assert seen["clockOffsetSeconds"] == pytest.approx(300, abs=2)

    wrong = subprocess.run([node, str(NPM_DIR / "probe.js"), "127.0.0.1", str(sim.port), "admin"],
                           env={**env, "ONVIF_PASSWORD": "wrong"}, capture_output=True, text=True, timeout=30,
                           check=False)
    assert wrong.returncode == 1 and "not Authorized" in json.loads(wrong.stdout)["error"]


# --- units ----------------------------------------------------------------------------------------------------------


def test_wsdls_come_from_the_installed_onvif_zeep() -> None:
    folder = wsdl_dir()
    assert (folder / "devicemgmt.wsdl").is_file() and (folder / "media.wsdl").is_file()
    assert "site-packages" in folder.parts


_WITH_WRAPPER = b"""<?xml version="1.0"?>
<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery">
<s:Body><d:ProbeMatches>
<d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:1</a:Address></a:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter</d:Types><d:Scopes>onvif://www.onvif.org/name/A</d:Scopes>
<d:XAddrs>http://192.0.2.10/onvif/device_service http://[2001:db8::1]/onvif/device_service</d:XAddrs></d:ProbeMatch>
<d:ProbeMatch><a:EndpointReference><a:Address>urn:uuid:2</a:Address></a:EndpointReference>
<d:Types>dn:NetworkVideoTransmitter</d:Types></d:ProbeMatch>
</d:ProbeMatches></s:Body></s:Envelope>"""


def test_parse_probe_matches() -> None:
    first, second = parse_probe_matches(_WITH_WRAPPER, "192.0.2.99")
    assert first.address == "urn:uuid:1" and first.host == "192.0.2.10" and len(first.xaddrs) == 2
    assert first.scopes == ["onvif://www.onvif.org/name/A"]
    assert second.xaddrs == [] and second.host == "192.0.2.99"  # no XAddrs: the sender's address
    unwrapped = _WITH_WRAPPER.replace(b"<d:ProbeMatches>", b"").replace(b"</d:ProbeMatches>", b"")
    assert [d.address for d in parse_probe_matches(unwrapped)] == ["urn:uuid:1", "urn:uuid:2"]
    assert parse_probe_matches(b"not xml") == []
    assert parse_probe_matches(b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>') == []
    assert b"NetworkVideoTransmitter" in probe_message("urn:uuid:x")


def test_discover_skips_bad_hosts_and_silent_ports() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        started = time.monotonic()
        devices = discover(timeout=0.3, multicast=False,
                           unicast_hosts=[f"127.0.0.1:{silent.getsockname()[1]}", "bad host:x", "127.0.0.1:9"])
    assert devices == []
    assert time.monotonic() - started < 1.0


def test_discover_from_an_address_that_is_not_ours() -> None:
    with pytest.raises(ConfigError, match="not an IPv4 address of this machine"):
        discover(timeout=0.1, interface="192.0.2.1", multicast=False, unicast_hosts=["127.0.0.1:9"])
