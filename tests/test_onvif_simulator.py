"""The ONVIF camera simulator against the real client library (onvif-zeep) and raw SOAP / WS-Discovery on loopback."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import socket
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import onvif
import pytest
from jifang.sim.onvif import (
    NS_DN,
    NS_SOAP12,
    NS_TDS,
    NS_TER,
    NS_TRT,
    NS_TT,
    NS_WSA,
    NS_WSD,
    NS_WSSE,
    NS_WSU,
    OnvifSimulator,
)
from onvif import ONVIFCamera
from onvif.exceptions import ONVIFError
from zeep import Client, Settings
from zeep.exceptions import Fault
from zeep.wsse.username import UsernameToken

# The WSDLs that ship inside the onvif-zeep wheel: passing them explicitly guarantees nothing is fetched remotely.
WSDL_DIR = str(Path(onvif.__file__).resolve().parent.parent / "wsdl")
USER = "operator"
PASSWORD = "s3cret-Pa55-not-in-logs"
MAIN_URI = "rtsp://127.0.0.1:8554/cam1"
SUB_URI = "rtsp://127.0.0.1:8554/cam1_sub"
DEVICE_BINDING = f"{{{NS_TDS}}}DeviceBinding"
PASSWORD_DIGEST = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"


def make_sim(**kwargs: Any) -> OnvifSimulator:
    options: dict[str, Any] = {
        "rtsp_url": MAIN_URI,
        "sub_rtsp_url": SUB_URI,
        "username": USER,
        "password": PASSWORD,
        "manufacturer": "Jifang Test",
        "model": "Sim Cam X",
        "serial": "SN-42",
        "hardware_id": "HW-7",
        "discovery_port": 0,
    }
    options.update(kwargs)
    return OnvifSimulator(**options)


@pytest.fixture
def sim() -> Iterator[OnvifSimulator]:
    with make_sim() as simulator:
        yield simulator


@pytest.fixture
def skewed_sim() -> Iterator[OnvifSimulator]:
    with make_sim(clock_offset_seconds=300) as simulator:
        yield simulator


def camera(sim: OnvifSimulator, password: str = PASSWORD, **kwargs: Any) -> ONVIFCamera:
    # no_cache: onvif-zeep's default CachingClient opens a SQLite cache in the user's home directory.
    return ONVIFCamera("127.0.0.1", sim.port, USER, password, WSDL_DIR, no_cache=True, **kwargs)


def device_client(sim: OnvifSimulator, wsse: UsernameToken | None = None) -> Any:
    """A plain zeep client for the device service, with a UsernameToken we control."""
    client = Client(os.path.join(WSDL_DIR, "devicemgmt.wsdl"), wsse=wsse, settings=Settings(strict=False))
    return client.create_service(DEVICE_BINDING, sim.xaddr)


def camera_offset(sim: OnvifSimulator) -> timedelta:
    """Camera clock minus host clock, from the unauthenticated GetSystemDateAndTime (what a probe does)."""
    utc = device_client(sim).GetSystemDateAndTime().UTCDateTime
    camera_now = datetime(utc.Date.Year, utc.Date.Month, utc.Date.Day, utc.Time.Hour, utc.Time.Minute,
                          utc.Time.Second, tzinfo=UTC)  # fmt: skip
    return camera_now - datetime.now(UTC)


def username_token(user: str, password: str, created: datetime, password_type: str = PASSWORD_DIGEST) -> str:
    nonce = os.urandom(16)
    stamp = created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if password_type == PASSWORD_DIGEST:
        secret = base64.b64encode(hashlib.sha1(nonce + stamp.encode() + password.encode()).digest()).decode()
    else:
        secret = password
    return (
        f'<wsse:Security xmlns:wsse="{NS_WSSE}" xmlns:wsu="{NS_WSU}"><wsse:UsernameToken>'
        f"<wsse:Username>{user}</wsse:Username>"
        f'<wsse:Password Type="{password_type}">{secret}</wsse:Password>'
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{stamp}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security>"
    )


def raw_soap(
    sim: OnvifSimulator, operation: str, security: str = "", path: str = "/onvif/device_service"
) -> tuple[int, ET.Element]:
    envelope = (
        f'<s:Envelope xmlns:s="{NS_SOAP12}" xmlns:tds="{NS_TDS}" xmlns:trt="{NS_TRT}" xmlns:tt="{NS_TT}">'
        f"<s:Header>{security}</s:Header><s:Body>{operation}</s:Body></s:Envelope>"
    )
    status, body = http(sim, path, envelope.encode(), "application/soap+xml; charset=utf-8")
    return status, ET.fromstring(body)


def http(
    sim: OnvifSimulator, path: str, data: bytes | None = None, content_type: str = "text/plain"
) -> tuple[int, bytes]:
    request = urllib.request.Request(f"{sim.base_url}{path}", data=data, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def fault_subcodes(envelope: ET.Element) -> list[str]:
    return [v.text or "" for v in envelope.iter(f"{{{NS_SOAP12}}}Value")][1:]


def ter(name: str) -> str:
    return f"{{{NS_TER}}}{name}"


def assert_not_authorized(error: ONVIFError | Fault) -> None:
    assert "not authorized" in str(error).lower()
    fault = error if isinstance(error, Fault) else error.__context__
    # ONVIFError flattens the message; the zeep Fault it wraps keeps the ONVIF subcode for precise handling.
    assert isinstance(fault, Fault)
    assert [q.text for q in fault.subcodes] == [ter("NotAuthorized")]


# -- onvif-zeep, the real client ---------------------------------------------------------------------------------


def test_onvif_zeep_probe_reads_device_profiles_and_uris(sim: OnvifSimulator) -> None:
    cam = camera(sim)

    info = cam.devicemgmt.GetDeviceInformation()
    assert (info.Manufacturer, info.Model, info.FirmwareVersion, info.SerialNumber, info.HardwareId) == (
        "Jifang Test", "Sim Cam X", "1.0", "SN-42", "HW-7",
    )  # fmt: skip

    utc = cam.devicemgmt.GetSystemDateAndTime().UTCDateTime
    reported = datetime(utc.Date.Year, utc.Date.Month, utc.Date.Day, utc.Time.Hour, utc.Time.Minute,
                        utc.Time.Second, tzinfo=UTC)  # fmt: skip
    assert abs((reported - datetime.now(UTC)).total_seconds()) < 3

    # GetCapabilities is what onvif-zeep used to find the media service.
    assert cam.xaddrs[NS_TRT] == f"{sim.base_url}/onvif/media_service"
    services = {s.Namespace: s.XAddr for s in cam.devicemgmt.GetServices({"IncludeCapability": False})}
    assert services == {NS_TDS: sim.xaddr, NS_TRT: f"{sim.base_url}/onvif/media_service"}

    media = cam.create_media_service()
    profiles = media.GetProfiles()
    summary = [
        (
            p.token,
            p.VideoEncoderConfiguration.Encoding,
            p.VideoEncoderConfiguration.Resolution.Width,
            p.VideoEncoderConfiguration.Resolution.Height,
            p.VideoEncoderConfiguration.RateControl.FrameRateLimit,
            p.VideoSourceConfiguration.SourceToken,
        )
        for p in profiles
    ]
    assert summary == [
        ("Profile_1", "H264", 1920, 1080, 25, "VideoSource_1"),
        ("Profile_2", "H264", 640, 360, 10, "VideoSource_1"),
    ]
    setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
    stream_uris = [media.GetStreamUri({"StreamSetup": setup, "ProfileToken": p.token}).Uri for p in profiles]
    assert stream_uris == [MAIN_URI, SUB_URI]
    snapshot_uris = {media.GetSnapshotUri({"ProfileToken": p.token}).Uri for p in profiles}
    assert snapshot_uris == {f"{sim.base_url}/snapshot.jpg"}
    status, jpeg = http(sim, "/snapshot.jpg")
    assert status == 200
    assert jpeg.startswith(b"\xff\xd8") and jpeg.endswith(b"\xff\xd9")

    sources = media.GetVideoSources()
    assert [(s.token, s.Resolution.Width, s.Framerate) for s in sources] == [("VideoSource_1", 1920, 25.0)]


def test_sub_stream_defaults_to_main_uri_and_snapshot_url_is_configurable() -> None:
    with OnvifSimulator(rtsp_url=MAIN_URI, snapshot_url="http://10.0.0.9/snap.jpg") as sim:
        media = ONVIFCamera("127.0.0.1", sim.port, "admin", "admin", WSDL_DIR, no_cache=True).create_media_service()
        setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
        assert media.GetStreamUri({"StreamSetup": setup, "ProfileToken": "Profile_2"}).Uri == MAIN_URI
        assert media.GetSnapshotUri({"ProfileToken": "Profile_1"}).Uri == "http://10.0.0.9/snap.jpg"
        assert sim.discovery_port is None


def test_wrong_password_or_user_is_not_authorized(sim: OnvifSimulator) -> None:
    # onvif-zeep calls GetCapabilities inside the constructor, so bad credentials fail there.
    with pytest.raises(ONVIFError) as excinfo:
        camera(sim, password="wrong")
    assert_not_authorized(excinfo.value)

    created = datetime.now(UTC)
    with pytest.raises(Fault) as fault:
        device_client(sim, UsernameToken("intruder", PASSWORD, use_digest=True, created=created)).GetDeviceInformation()
    assert_not_authorized(fault.value)

    # No token at all, and a plaintext password: both refused with the same fault and HTTP 401.
    status, envelope = raw_soap(sim, "<tds:GetDeviceInformation/>")
    assert status == 401
    assert fault_subcodes(envelope) == ["ter:NotAuthorized"]
    status, envelope = raw_soap(
        sim, "<tds:GetDeviceInformation/>", username_token(USER, PASSWORD, datetime.now(UTC), PASSWORD_TEXT)
    )
    assert status == 401
    status, _ = raw_soap(sim, "<tds:GetDeviceInformation/>", username_token(USER, PASSWORD, datetime.now(UTC)))
    assert status == 200


def test_clock_offset_rejects_host_clock_tokens_and_accepts_offset_ones(skewed_sim: OnvifSimulator) -> None:
    offset = camera_offset(skewed_sim)
    assert abs(offset.total_seconds() - 300) < 2

    # A token stamped with the host clock is 5 minutes off for this camera: the same fault as a wrong password.
    host_token = UsernameToken(USER, PASSWORD, use_digest=True, created=datetime.now(UTC))
    with pytest.raises(Fault) as fault:
        device_client(skewed_sim, host_token).GetDeviceInformation()
    assert_not_authorized(fault.value)
    with pytest.raises(ONVIFError) as excinfo:
        camera(skewed_sim)
    assert_not_authorized(excinfo.value)

    camera_token = UsernameToken(USER, PASSWORD, use_digest=True, created=datetime.now(UTC) + offset)
    assert device_client(skewed_sim, camera_token).GetDeviceInformation().SerialNumber == "SN-42"

    # The window is ±10 s around the camera clock, on both sides.
    for error in (timedelta(seconds=-20), timedelta(seconds=20)):
        created = datetime.now(UTC) + offset + error
        status, _ = raw_soap(skewed_sim, "<tds:GetDeviceInformation/>", username_token(USER, PASSWORD, created))
        assert status == 401
    created = datetime.now(UTC) + offset + timedelta(seconds=5)
    status, _ = raw_soap(skewed_sim, "<tds:GetDeviceInformation/>", username_token(USER, PASSWORD, created))
    assert status == 200


def test_onvif_zeep_adjust_time_applies_the_camera_offset(skewed_sim: OnvifSimulator) -> None:
    # adjust_time=True reads GetSystemDateAndTime (unauthenticated) and shifts every token's Created by the
    # difference, truncated to whole seconds, for the device service and every service created afterwards.
    cam = camera(skewed_sim, adjust_time=True)
    assert abs(cam.dt_diff.total_seconds() - 300) < 2
    assert cam.devicemgmt.GetDeviceInformation().Model == "Sim Cam X"
    assert [p.token for p in cam.create_media_service().GetProfiles()] == ["Profile_1", "Profile_2"]

    # If the camera clock moves after the client measured it, tokens go stale again (a health check sees it).
    skewed_sim.clock_offset_seconds = -300
    with pytest.raises(ONVIFError) as excinfo:
        cam.devicemgmt.GetDeviceInformation()
    assert_not_authorized(excinfo.value)


# -- raw SOAP: errors ---------------------------------------------------------------------------------------------


def test_unknown_operation_is_an_action_not_supported_fault(sim: OnvifSimulator) -> None:
    token = username_token(USER, PASSWORD, datetime.now(UTC))
    status, envelope = raw_soap(sim, "<tds:SystemReboot/>", token)
    assert status == 400
    assert envelope.find(f"{{{NS_SOAP12}}}Body/{{{NS_SOAP12}}}Fault") is not None
    assert fault_subcodes(envelope) == ["ter:ActionNotSupported"]

    # Operations are dispatched on the body element whatever the /onvif/ path; a bad profile token is a fault.
    status, envelope = raw_soap(
        sim, "<trt:GetStreamUri><trt:ProfileToken>nope</trt:ProfileToken></trt:GetStreamUri>", token, "/onvif/x"
    )
    assert status == 400
    assert fault_subcodes(envelope) == ["ter:InvalidArgVal", "ter:NoProfile"]

    status, envelope = raw_soap(sim, "<tds:GetSystemDateAndTime/>", path="/onvif/media_service")
    assert status == 200
    assert envelope.find(f".//{{{NS_TDS}}}SystemDateAndTime/{{{NS_TT}}}UTCDateTime") is not None


def test_non_soap_requests_are_rejected(sim: OnvifSimulator) -> None:
    status, _ = http(sim, "/onvif/device_service")
    assert status == 405
    status, _ = http(sim, "/onvif/device_service", b"hello, not xml")
    assert status == 400
    status, _ = http(sim, "/onvif/device_service", b"<html><body/></html>", "text/html")
    assert status == 400
    status, _ = http(sim, "/cgi-bin/anything", b"<x/>")
    assert status == 404


# -- WS-Discovery ------------------------------------------------------------------------------------------------


def probe(types: str = "dn:NetworkVideoTransmitter", scopes: str = "") -> tuple[str, bytes]:
    message_id = f"uuid:{uuid.uuid4()}"
    scopes_xml = f"<d:Scopes>{scopes}</d:Scopes>" if scopes else ""
    datagram = (
        f'<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="{NS_SOAP12}" xmlns:a="{NS_WSA}" '
        f'xmlns:d="{NS_WSD}" xmlns:dn="{NS_DN}" xmlns:pr="http://example.invalid/printer">'
        '<s:Header><a:Action s:mustUnderstand="1">http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action>'
        f"<a:MessageID>{message_id}</a:MessageID>"
        "<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>"
        '<a:To s:mustUnderstand="1">urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To></s:Header>'
        f"<s:Body><d:Probe><d:Types>{types}</d:Types>{scopes_xml}</d:Probe></s:Body></s:Envelope>"
    )
    return message_id, datagram.encode()


def send_probe(sim: OnvifSimulator, datagram: bytes, timeout: float = 2.0) -> bytes | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(timeout)
        assert sim.discovery_port is not None
        sock.sendto(datagram, ("127.0.0.1", sim.discovery_port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def test_ws_discovery_probe_gets_a_unicast_probe_match(sim: OnvifSimulator) -> None:
    message_id, datagram = probe()
    reply = send_probe(sim, datagram)
    assert reply is not None
    envelope = ET.fromstring(reply)
    header = envelope.find(f"{{{NS_SOAP12}}}Header")
    assert header is not None
    assert header.findtext(f"{{{NS_WSA}}}RelatesTo") == message_id
    assert header.findtext(f"{{{NS_WSA}}}Action") == "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches"
    matches = envelope.findall(f"{{{NS_SOAP12}}}Body/{{{NS_WSD}}}ProbeMatches/{{{NS_WSD}}}ProbeMatch")
    assert len(matches) == 1
    match = matches[0]
    assert match.findtext(f"{{{NS_WSA}}}EndpointReference/{{{NS_WSA}}}Address") == sim.endpoint_uuid
    assert sim.endpoint_uuid.startswith("urn:uuid:")
    assert match.findtext(f"{{{NS_WSD}}}XAddrs") == sim.xaddr
    assert (match.findtext(f"{{{NS_WSD}}}Types") or "").split() == ["dn:NetworkVideoTransmitter", "tds:Device"]
    scopes = (match.findtext(f"{{{NS_WSD}}}Scopes") or "").split()
    assert "onvif://www.onvif.org/type/video_encoder" in scopes
    assert "onvif://www.onvif.org/hardware/HW-7" in scopes
    assert "onvif://www.onvif.org/name/Sim%20Cam%20X" in scopes
    assert any(s.startswith("onvif://www.onvif.org/location/") for s in scopes)
    assert match.findtext(f"{{{NS_WSD}}}MetadataVersion") == "1"
    # The responder listens on the simulator's own address, never on every interface.
    assert sim._udp is not None and sim._udp.server_address[0] == "127.0.0.1"


def test_ws_discovery_matching_rules(sim: OnvifSimulator) -> None:
    assert send_probe(sim, probe(types="")[1]) is not None  # no Types: any device answers
    assert send_probe(sim, probe(types="dn:NetworkVideoTransmitter", scopes="onvif://www.onvif.org/type")[1])
    # Not a camera type, or a scope we do not have: silence, as a real camera.
    assert send_probe(sim, probe(types="pr:Printer")[1], timeout=0.3) is None
    assert send_probe(sim, probe(scopes="onvif://www.onvif.org/name/Other")[1], timeout=0.3) is None
    assert send_probe(sim, b"not xml at all", timeout=0.3) is None


# -- lifecycle and hygiene -----------------------------------------------------------------------------------------


def test_stopped_simulator_is_unreachable_and_wildcard_hosts_are_refused() -> None:
    sim = make_sim()
    sim.start()
    port = sim.port
    sim.stop()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with pytest.raises(RuntimeError):
        _ = sim.port
    with pytest.raises(ValueError):
        OnvifSimulator(rtsp_url=MAIN_URI, host="0.0.0.0")


def test_password_never_logged(sim: OnvifSimulator, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    camera(sim).devicemgmt.GetDeviceInformation()
    with pytest.raises(ONVIFError):
        camera(sim, password="wrong")
    assert "rejected" in caplog.text  # the reason is logged...
    assert PASSWORD not in caplog.text  # ...the secret is not
    assert PASSWORD not in repr(sim)
