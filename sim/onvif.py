"""ONVIF camera simulator (standard library only) so demos and tests onboard a simulated camera like a real one.

It speaks enough of ONVIF Profile S for onboarding: the device service (GetSystemDateAndTime, GetDeviceInformation,
GetCapabilities, GetServices, GetScopes), the media service (GetProfiles, GetVideoSources, GetStreamUri,
GetSnapshotUri), WS-Security UsernameToken digest authentication checked against a clock that can be offset from
the host's, and a unicast WS-Discovery Probe responder.

Responses are plain XML templates: clients only care about element names, namespaces and order, and templates keep
the wire format obvious when compared with a real camera's capture.

Deliberate limits: no WS-Discovery Hello/Bye (they are multicast, and the simulator never sends multicast); the
snapshot URL needs no HTTP authentication (real cameras ask for HTTP Digest); replayed nonces are accepted.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import io
import logging
import socket
import socketserver
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit
from xml.sax.saxutils import escape

log = logging.getLogger(__name__)

# Real ONVIF / OASIS / W3C namespaces: clients resolve elements by namespace, so these must be exact.
NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_TDS = "http://www.onvif.org/ver10/device/wsdl"
NS_TRT = "http://www.onvif.org/ver10/media/wsdl"
NS_TT = "http://www.onvif.org/ver10/schema"
NS_TER = "http://www.onvif.org/ver10/error"
NS_DN = "http://www.onvif.org/ver10/network/wsdl"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
NS_WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"

PASSWORD_DIGEST_TYPE = (
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"
)
WSA_ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
WSD_PROBE_ACTION = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe"
WSD_PROBE_MATCHES_ACTION = "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches"
WSD_MATCH_RFC3986 = "http://schemas.xmlsoap.org/ws/2005/04/discovery/rfc3986"

# Cameras accept a UsernameToken whose Created is within a window around their own clock; ±10 s is a common
# firmware default (Hikvision, Dahua), wide enough for ordinary network delay, far too narrow for a 5-minute skew.
AUTH_WINDOW = timedelta(seconds=10)
# Requests bigger than this are not ONVIF calls (the largest onboarding request is well under 4 KiB).
MAX_BODY_BYTES = 1 << 20
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "*"})

# A valid 16x16 grey baseline JPEG (made with ffmpeg, bit-exact), served at the default snapshot URL so a probe
# that fetches the snapshot gets a real image without an image library.
SNAPSHOT_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAgAAAQABAAD/2wBDAAg+Pkk+SVVVVVVVVWRdZGhoaGRkZGRoaGhwcHCDg4NwcHBoaHBwfHyDg4+Tj4eHg4eTk5ubm7q6"
    "srLZ2eD/////xABKAAEAAAAAAAAAAAAAAAAAAAAAAQEAAAAAAAAAAAAAAAAAAAAAEAEAAAAAAAAAAAAAAAAAAAAAEQEAAAAAAAAAAAAAAAAA"
    "AAAA/8AAEQgAEAAQAwEiAAIRAAMRAP/aAAwDAQACEQMRAD8AAA//2Q=="
)
SNAPSHOT_PATH = "/snapshot.jpg"


@dataclass(frozen=True)
class SimProfile:
    """One media profile as GetProfiles reports it (a main and a sub stream, like most IP cameras)."""

    token: str
    name: str
    encoder_token: str
    width: int
    height: int
    fps: int
    bitrate_kbps: int
    gov_length: int


MAIN_PROFILE = SimProfile("Profile_1", "MainStream", "VideoEncoder_1", 1920, 1080, 25, 4096, 50)
SUB_PROFILE = SimProfile("Profile_2", "SubStream", "VideoEncoder_2", 640, 360, 10, 512, 20)
VIDEO_SOURCE_TOKEN = "VideoSource_1"
VIDEO_SOURCE_CONFIG_TOKEN = "VideoSourceConfig_1"


class SoapFault(Exception):
    """A SOAP 1.2 fault to send back; `subcodes` are ONVIF `ter:` local names, outermost first."""

    def __init__(self, status: int, code: str, subcodes: tuple[str, ...], reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.subcodes = subcodes
        self.reason = reason

    def to_xml(self) -> str:
        subcode_xml = ""
        # Subcodes nest: the innermost is the most specific (e.g. InvalidArgVal > NoProfile).
        for subcode in reversed(self.subcodes):
            subcode_xml = f"<env:Subcode><env:Value>ter:{subcode}</env:Value>{subcode_xml}</env:Subcode>"
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<env:Envelope xmlns:env="{NS_SOAP12}" xmlns:ter="{NS_TER}">'
            "<env:Body><env:Fault>"
            f"<env:Code><env:Value>env:{self.code}</env:Value>{subcode_xml}</env:Code>"
            f'<env:Reason><env:Text xml:lang="en">{escape(self.reason)}</env:Text></env:Reason>'
            "</env:Fault></env:Body></env:Envelope>"
        )


def not_authorized() -> SoapFault:
    # The same answer for every auth failure (unknown user, bad digest, stale Created), as real cameras do:
    # a client must not learn which part was wrong. The reason for the log is recorded by the caller.
    return SoapFault(401, "Sender", ("NotAuthorized",), "Sender not Authorized")


def _text(parent: ET.Element | None, path: str) -> str | None:
    if parent is None:
        return None
    node = parent.find(path)
    return None if node is None or node.text is None else node.text.strip()


def parse_created(value: str) -> datetime:
    """wsu:Created as sent by clients: '...Z', '...+00:00' (zeep) or with fractions; naive means UTC."""
    created = datetime.fromisoformat(value.strip())
    return created.replace(tzinfo=UTC) if created.tzinfo is None else created.astimezone(UTC)


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """WS-Security UsernameToken digest: base64(sha1(nonce + created + password))."""
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode("ascii")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bool(value: bool) -> str:
    return "true" if value else "false"


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    simulator: OnvifSimulator


class _HttpServer6(_HttpServer):
    address_family = socket.AF_INET6


class _OnvifHandler(BaseHTTPRequestHandler):
    # HTTP/1.0 closes the connection after each answer: with keep-alive a client's pooled connection would keep
    # talking to a handler thread after stop(), and a stopped camera must look unreachable.
    protocol_version = "HTTP/1.0"
    server_version = "jifang-onvif-sim/1.0"
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        # Request lines only (method, path, status) and at debug level: never bodies, which carry the token.
        log.debug("ONVIF sim %s: " + format, self.client_address[0], *args)

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_fault(self, fault: SoapFault) -> None:
        self._send(fault.status, fault.to_xml().encode(), "application/soap+xml; charset=utf-8")

    def do_GET(self) -> None:
        if urlsplit(self.path).path == SNAPSHOT_PATH:
            self._send(200, SNAPSHOT_JPEG, "image/jpeg")
            return
        # ONVIF services are SOAP over POST only.
        self._send(405, b"Method Not Allowed: ONVIF services take SOAP POST\n", "text/plain", {"Allow": "POST"})

    do_HEAD = do_GET

    def do_POST(self) -> None:
        if not urlsplit(self.path).path.startswith("/onvif/"):
            self._send(404, b"Not Found\n", "text/plain")
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self._send_fault(SoapFault(411, "Sender", ("WellFormed",), "Content-Length required"))
            return
        if length < 0 or length > MAX_BODY_BYTES:
            self._send_fault(SoapFault(413, "Sender", ("WellFormed",), "Request too large"))
            return
        body = self.rfile.read(length)
        status, response = self.server.simulator.handle_soap(body)
        self._send(status, response.encode(), "application/soap+xml; charset=utf-8")


class _DiscoveryServer(socketserver.UDPServer):
    simulator: OnvifSimulator


class _DiscoveryServer6(_DiscoveryServer):
    address_family = socket.AF_INET6


class _DiscoveryHandler(socketserver.BaseRequestHandler):
    server: _DiscoveryServer

    def handle(self) -> None:
        data, sock = self.request
        reply = self.server.simulator.handle_probe(data)
        if reply is not None:
            # Unicast back to whoever probed, as WS-Discovery prescribes for ProbeMatches.
            sock.sendto(reply, self.client_address)


class OnvifSimulator:
    """A simulated ONVIF camera on `host`; see the module docstring for what it implements.

    `clock_offset_seconds` (the camera clock minus real UTC) may be changed while running, e.g. to make a healthy
    camera drift. `endpoint_uuid` is random per instance (two simulators must never look like one device when
    discovered together); assign it before start() for a stable identity.
    """

    def __init__(
        self,
        *,
        rtsp_url: str,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "admin",
        password: str = "admin",
        snapshot_url: str | None = None,
        clock_offset_seconds: float = 0.0,
        manufacturer: str = "jifang",
        model: str = "SimCam",
        firmware: str = "1.0",
        serial: str = "SIM0001",
        hardware_id: str = "SIM",
        sub_rtsp_url: str | None = None,
        discovery_port: int | None = None,
    ) -> None:
        if host in WILDCARD_HOSTS:
            # A camera advertises a concrete address in its XAddrs, and the discovery responder must not listen
            # on every interface of the machine.
            raise ValueError(f"host must be a concrete address, not {host!r}")
        self.rtsp_url = rtsp_url
        self.sub_rtsp_url = sub_rtsp_url or rtsp_url
        self.host = host
        self.username = username
        self._password = password  # private and never logged or repr'd
        self.snapshot_url = snapshot_url
        self.clock_offset_seconds = clock_offset_seconds
        self.manufacturer = manufacturer
        self.model = model
        self.firmware = firmware
        self.serial = serial
        self.hardware_id = hardware_id
        self.endpoint_uuid = f"urn:uuid:{uuid.uuid4()}"
        self._requested_port = port
        self._requested_discovery_port = discovery_port
        self._http: _HttpServer | None = None
        self._udp: _DiscoveryServer | None = None
        self._threads: list[threading.Thread] = []
        self._message_number = 0
        self._message_lock = threading.Lock()
        # AppSequence InstanceId must grow on each restart of a device; seconds since the epoch do that.
        self._instance_id = 0
        self._operations: dict[tuple[str, str], tuple[bool, Callable[[ET.Element], str]]] = {
            # (namespace, operation): (needs authentication, handler). GetSystemDateAndTime is the one call ONVIF
            # allows without authentication, precisely so clients can learn the camera clock before signing.
            (NS_TDS, "GetSystemDateAndTime"): (False, self._get_system_date_and_time),
            (NS_TDS, "GetDeviceInformation"): (True, self._get_device_information),
            (NS_TDS, "GetCapabilities"): (True, self._get_capabilities),
            (NS_TDS, "GetServices"): (True, self._get_services),
            (NS_TDS, "GetScopes"): (True, self._get_scopes),
            (NS_TRT, "GetProfiles"): (True, self._get_profiles),
            (NS_TRT, "GetVideoSources"): (True, self._get_video_sources),
            (NS_TRT, "GetStreamUri"): (True, self._get_stream_uri),
            (NS_TRT, "GetSnapshotUri"): (True, self._get_snapshot_uri),
        }

    def __repr__(self) -> str:
        state = f"{self.host}:{self._http.server_address[1]}" if self._http else "stopped"
        return f"OnvifSimulator({self.manufacturer} {self.model} {self.serial}, {state})"

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._http is not None:
            raise RuntimeError("simulator already started")
        ipv6 = ":" in self.host
        http = (_HttpServer6 if ipv6 else _HttpServer)((self.host, self._requested_port), _OnvifHandler)
        http.simulator = self
        udp: _DiscoveryServer | None = None
        if self._requested_discovery_port is not None:
            try:
                udp = (_DiscoveryServer6 if ipv6 else _DiscoveryServer)(
                    (self.host, self._requested_discovery_port), _DiscoveryHandler
                )
            except OSError:
                http.server_close()
                raise
            udp.simulator = self
        self._http, self._udp = http, udp
        self._instance_id = int(datetime.now(UTC).timestamp())
        servers: list[socketserver.BaseServer] = [http] if udp is None else [http, udp]
        for server in servers:
            # A short poll interval keeps stop() fast (shutdown waits for the next poll).
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"onvif-sim-{self.serial}",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        log.info("ONVIF simulator %s listening at %s (discovery port %s)", self.serial, self.xaddr, self.discovery_port)

    def stop(self) -> None:
        servers: list[socketserver.BaseServer] = [s for s in (self._http, self._udp) if s is not None]
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()
        self._http = self._udp = None

    def __enter__(self) -> OnvifSimulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._http is None:
            raise RuntimeError("simulator not started")
        return int(self._http.server_address[1])

    @property
    def discovery_port(self) -> int | None:
        if self._requested_discovery_port is None:
            return None
        if self._udp is None:
            raise RuntimeError("simulator not started")
        return int(self._udp.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def xaddr(self) -> str:
        return f"{self.base_url}/onvif/device_service"

    @property
    def media_xaddr(self) -> str:
        return f"{self.base_url}/onvif/media_service"

    def camera_now(self) -> datetime:
        """The simulated camera clock (UTC, aware)."""
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset_seconds)

    @property
    def scopes(self) -> list[str]:
        # Model and hardware go into URI path segments, so percent-encode them (spaces are common in model names).
        return [
            "onvif://www.onvif.org/type/video_encoder",
            "onvif://www.onvif.org/Profile/Streaming",
            f"onvif://www.onvif.org/hardware/{quote(self.hardware_id, safe='')}",
            f"onvif://www.onvif.org/name/{quote(self.model, safe='')}",
            "onvif://www.onvif.org/location/country/china",
        ]

    # -- SOAP ----------------------------------------------------------------------------------------------------

    def handle_soap(self, body: bytes) -> tuple[int, str]:
        """Answer one SOAP request body: (HTTP status, response XML)."""
        try:
            operation, header, request = self._parse_envelope(body)
            entry = self._operations.get(operation)
            if entry is None:
                raise SoapFault(400, "Receiver", ("ActionNotSupported",), "Optional Action Not Implemented")
            needs_auth, handler = entry
            if needs_auth:
                self._authenticate(header, operation[1])
            return 200, self._envelope(handler(request))
        except SoapFault as fault:
            return fault.status, fault.to_xml()

    @staticmethod
    def _parse_envelope(body: bytes) -> tuple[tuple[str, str], ET.Element | None, ET.Element]:
        # SOAP forbids DTDs; refusing them also rules out entity-expansion tricks in the parser.
        if b"<!DOCTYPE" in body[:4096].upper():
            raise SoapFault(400, "Sender", ("WellFormed",), "DTD not allowed in SOAP messages")
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise SoapFault(400, "Sender", ("WellFormed",), "Well-formed XML required") from exc
        if root.tag == f"{{{NS_SOAP11}}}Envelope":
            raise SoapFault(400, "VersionMismatch", (), "SOAP 1.2 envelope required")
        if root.tag != f"{{{NS_SOAP12}}}Envelope":
            raise SoapFault(400, "Sender", ("WellFormed",), "Not a SOAP envelope")
        soap_body = root.find(f"{{{NS_SOAP12}}}Body")
        request = None if soap_body is None else next(iter(soap_body), None)
        if request is None:
            raise SoapFault(400, "Sender", ("InvalidArgs",), "Empty SOAP body")
        namespace, _, name = request.tag[1:].partition("}") if request.tag.startswith("{") else ("", "", request.tag)
        return (namespace, name), root.find(f"{{{NS_SOAP12}}}Header"), request

    def _authenticate(self, header: ET.Element | None, operation: str) -> None:
        token = None if header is None else header.find(f"{{{NS_WSSE}}}Security/{{{NS_WSSE}}}UsernameToken")
        why = self._token_problem(token)
        if why is not None:
            # Why it failed is logged (it is what a technician needs), the secret material never is.
            log.info("ONVIF simulator %s: %s rejected: %s", self.serial, operation, why)
            raise not_authorized()

    def _token_problem(self, token: ET.Element | None) -> str | None:
        if token is None:
            return "no WS-Security UsernameToken"
        username = _text(token, f"{{{NS_WSSE}}}Username") or ""
        password = token.find(f"{{{NS_WSSE}}}Password")
        nonce_b64 = _text(token, f"{{{NS_WSSE}}}Nonce")
        created = _text(token, f"{{{NS_WSU}}}Created")
        if password is None or password.get("Type") != PASSWORD_DIGEST_TYPE:
            return "password is not a PasswordDigest"
        if nonce_b64 is None or created is None:
            return "digest token without Nonce or Created"
        try:
            nonce = base64.b64decode(nonce_b64, validate=True)
            created_at = parse_created(created)
        except (binascii.Error, ValueError):
            return "malformed Nonce or Created"
        expected = password_digest(nonce, created, self._password)
        # Compare both fields in constant time, and always both, so timing says nothing about which one failed.
        user_ok = hmac.compare_digest(username.encode(), self.username.encode())
        digest_ok = hmac.compare_digest((password.text or "").strip().encode(), expected.encode())
        if not (user_ok and digest_ok):
            return "wrong username or password"
        skew = (created_at - self.camera_now()).total_seconds()
        if abs(skew) > AUTH_WINDOW.total_seconds():
            return f"Created is {skew:+.1f} s from the camera clock (window ±{AUTH_WINDOW.total_seconds():.0f} s)"
        return None

    @staticmethod
    def _envelope(content: str) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<env:Envelope xmlns:env="{NS_SOAP12}" xmlns:tds="{NS_TDS}" xmlns:trt="{NS_TRT}" xmlns:tt="{NS_TT}">'
            f"<env:Body>{content}</env:Body></env:Envelope>"
        )

    # -- device service ------------------------------------------------------------------------------------------

    def _get_system_date_and_time(self, request: ET.Element) -> str:
        now = self.camera_now()
        date_time = (
            f"<tt:Time><tt:Hour>{now.hour}</tt:Hour><tt:Minute>{now.minute}</tt:Minute>"
            f"<tt:Second>{now.second}</tt:Second></tt:Time>"
            f"<tt:Date><tt:Year>{now.year}</tt:Year><tt:Month>{now.month}</tt:Month><tt:Day>{now.day}</tt:Day></tt:Date>"
        )
        # Local time equals UTC (TZ UTC0): the offset under test is the clock error, not a time zone.
        return (
            "<tds:GetSystemDateAndTimeResponse><tds:SystemDateAndTime>"
            "<tt:DateTimeType>Manual</tt:DateTimeType><tt:DaylightSavings>false</tt:DaylightSavings>"
            "<tt:TimeZone><tt:TZ>UTC0</tt:TZ></tt:TimeZone>"
            f"<tt:UTCDateTime>{date_time}</tt:UTCDateTime><tt:LocalDateTime>{date_time}</tt:LocalDateTime>"
            "</tds:SystemDateAndTime></tds:GetSystemDateAndTimeResponse>"
        )

    def _get_device_information(self, request: ET.Element) -> str:
        return (
            "<tds:GetDeviceInformationResponse>"
            f"<tds:Manufacturer>{escape(self.manufacturer)}</tds:Manufacturer>"
            f"<tds:Model>{escape(self.model)}</tds:Model>"
            f"<tds:FirmwareVersion>{escape(self.firmware)}</tds:FirmwareVersion>"
            f"<tds:SerialNumber>{escape(self.serial)}</tds:SerialNumber>"
            f"<tds:HardwareId>{escape(self.hardware_id)}</tds:HardwareId>"
            "</tds:GetDeviceInformationResponse>"
        )

    def _get_capabilities(self, request: ET.Element) -> str:
        categories = {c.text.strip() for c in request.findall(f"{{{NS_TDS}}}Category") if c.text} or {"All"}
        want_device = bool(categories & {"All", "Device"})
        want_media = bool(categories & {"All", "Media"})
        if not (want_device or want_media):
            raise SoapFault(400, "Receiver", ("ActionNotSupported", "NoSuchService"), "Service not supported")
        parts = []
        if want_device:  # schema order: Analytics, Device, Events, Imaging, Media, PTZ
            parts.append(
                f"<tt:Device><tt:XAddr>{escape(self.xaddr)}</tt:XAddr>"
                "<tt:Network><tt:IPFilter>false</tt:IPFilter><tt:ZeroConfiguration>false</tt:ZeroConfiguration>"
                "<tt:IPVersion6>false</tt:IPVersion6><tt:DynDNS>false</tt:DynDNS></tt:Network>"
                "<tt:System><tt:DiscoveryResolve>false</tt:DiscoveryResolve><tt:DiscoveryBye>false</tt:DiscoveryBye>"
                "<tt:RemoteDiscovery>false</tt:RemoteDiscovery><tt:SystemBackup>false</tt:SystemBackup>"
                "<tt:SystemLogging>false</tt:SystemLogging><tt:FirmwareUpgrade>false</tt:FirmwareUpgrade>"
                "<tt:SupportedVersions><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tt:SupportedVersions>"
                "</tt:System></tt:Device>"
            )
        if want_media:
            parts.append(
                f"<tt:Media><tt:XAddr>{escape(self.media_xaddr)}</tt:XAddr><tt:StreamingCapabilities>"
                "<tt:RTPMulticast>false</tt:RTPMulticast><tt:RTP_TCP>true</tt:RTP_TCP>"
                "<tt:RTP_RTSP_TCP>true</tt:RTP_RTSP_TCP></tt:StreamingCapabilities></tt:Media>"
            )
        capabilities = "".join(parts)
        return (
            f"<tds:GetCapabilitiesResponse><tds:Capabilities>{capabilities}</tds:Capabilities>"
            "</tds:GetCapabilitiesResponse>"
        )

    def _get_services(self, request: ET.Element) -> str:
        services = "".join(
            f"<tds:Service><tds:Namespace>{namespace}</tds:Namespace><tds:XAddr>{escape(xaddr)}</tds:XAddr>"
            "<tds:Version><tt:Major>2</tt:Major><tt:Minor>60</tt:Minor></tds:Version></tds:Service>"
            for namespace, xaddr in ((NS_TDS, self.xaddr), (NS_TRT, self.media_xaddr))
        )
        return f"<tds:GetServicesResponse>{services}</tds:GetServicesResponse>"

    def _get_scopes(self, request: ET.Element) -> str:
        scopes = "".join(
            f"<tds:Scopes><tt:ScopeDef>Fixed</tt:ScopeDef><tt:ScopeItem>{escape(scope)}</tt:ScopeItem></tds:Scopes>"
            for scope in self.scopes
        )
        return f"<tds:GetScopesResponse>{scopes}</tds:GetScopesResponse>"

    # -- media service -------------------------------------------------------------------------------------------

    def _profile(self, request: ET.Element) -> SimProfile:
        token = _text(request, f"{{{NS_TRT}}}ProfileToken")
        for profile in (MAIN_PROFILE, SUB_PROFILE):
            if profile.token == token:
                return profile
        raise SoapFault(400, "Sender", ("InvalidArgVal", "NoProfile"), "The requested profile token does not exist")

    def _get_profiles(self, request: ET.Element) -> str:
        source = MAIN_PROFILE  # both profiles encode the one sensor
        source_config = (
            f'<tt:VideoSourceConfiguration token="{VIDEO_SOURCE_CONFIG_TOKEN}">'
            "<tt:Name>VideoSourceConfig</tt:Name><tt:UseCount>2</tt:UseCount>"
            f"<tt:SourceToken>{VIDEO_SOURCE_TOKEN}</tt:SourceToken>"
            f'<tt:Bounds x="0" y="0" width="{source.width}" height="{source.height}"/>'
            "</tt:VideoSourceConfiguration>"
        )
        profiles = "".join(
            f'<trt:Profiles token="{p.token}" fixed="true"><tt:Name>{p.name}</tt:Name>{source_config}'
            f'<tt:VideoEncoderConfiguration token="{p.encoder_token}">'
            f"<tt:Name>{p.name}Encoder</tt:Name><tt:UseCount>1</tt:UseCount><tt:Encoding>H264</tt:Encoding>"
            f"<tt:Resolution><tt:Width>{p.width}</tt:Width><tt:Height>{p.height}</tt:Height></tt:Resolution>"
            "<tt:Quality>4</tt:Quality>"
            f"<tt:RateControl><tt:FrameRateLimit>{p.fps}</tt:FrameRateLimit>"
            f"<tt:EncodingInterval>1</tt:EncodingInterval><tt:BitrateLimit>{p.bitrate_kbps}</tt:BitrateLimit>"
            "</tt:RateControl>"
            f"<tt:H264><tt:GovLength>{p.gov_length}</tt:GovLength><tt:H264Profile>Main</tt:H264Profile></tt:H264>"
            "<tt:Multicast><tt:Address><tt:Type>IPv4</tt:Type><tt:IPv4Address>0.0.0.0</tt:IPv4Address>"
            "</tt:Address><tt:Port>0</tt:Port><tt:TTL>0</tt:TTL><tt:AutoStart>false</tt:AutoStart></tt:Multicast>"
            "<tt:SessionTimeout>PT60S</tt:SessionTimeout></tt:VideoEncoderConfiguration></trt:Profiles>"
            for p in (MAIN_PROFILE, SUB_PROFILE)
        )
        return f"<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>"

    def _get_video_sources(self, request: ET.Element) -> str:
        source = MAIN_PROFILE
        return (
            f'<trt:GetVideoSourcesResponse><trt:VideoSources token="{VIDEO_SOURCE_TOKEN}">'
            f"<tt:Framerate>{source.fps}</tt:Framerate>"
            f"<tt:Resolution><tt:Width>{source.width}</tt:Width><tt:Height>{source.height}</tt:Height></tt:Resolution>"
            "</trt:VideoSources></trt:GetVideoSourcesResponse>"
        )

    @staticmethod
    def _media_uri(element: str, uri: str) -> str:
        return (
            f"<trt:{element}><trt:MediaUri><tt:Uri>{escape(uri)}</tt:Uri>"
            "<tt:InvalidAfterConnect>false</tt:InvalidAfterConnect><tt:InvalidAfterReboot>false</tt:InvalidAfterReboot>"
            f"<tt:Timeout>PT0S</tt:Timeout></trt:MediaUri></trt:{element}>"
        )

    def _get_stream_uri(self, request: ET.Element) -> str:
        profile = self._profile(request)
        uri = self.rtsp_url if profile is MAIN_PROFILE else self.sub_rtsp_url
        return self._media_uri("GetStreamUriResponse", uri)

    def _get_snapshot_uri(self, request: ET.Element) -> str:
        self._profile(request)  # an unknown token is an error even though every profile shares the snapshot
        return self._media_uri("GetSnapshotUriResponse", self.snapshot_url or f"{self.base_url}{SNAPSHOT_PATH}")

    # -- WS-Discovery ----------------------------------------------------------------------------------------------

    def handle_probe(self, datagram: bytes) -> bytes | None:
        """The ProbeMatches reply to a WS-Discovery Probe datagram, or None when it is not a matching Probe."""
        if b"<!DOCTYPE" in datagram[:4096].upper():
            return None
        namespaces: dict[str, str] = {}
        try:
            # iterparse reports the prefix declarations, needed to resolve the QNames inside <Types>.
            root: ET.Element | None = None
            for event, item in ET.iterparse(io.BytesIO(datagram), events=("start-ns", "start")):
                if event == "start-ns":
                    prefix, uri = item
                    namespaces.setdefault(prefix, uri)
                elif root is None:
                    root = item
        except ET.ParseError:
            log.debug("WS-Discovery: ignoring a datagram that is not XML")
            return None
        if root is None or root.tag not in (f"{{{NS_SOAP12}}}Envelope", f"{{{NS_SOAP11}}}Envelope"):
            return None
        soap = root.tag[1:].partition("}")[0]
        probe = root.find(f"{{{soap}}}Body/{{{NS_WSD}}}Probe")
        if probe is None:
            return None
        message_id = _text(root, f"{{{soap}}}Header/{{{NS_WSA}}}MessageID")
        action = _text(root, f"{{{soap}}}Header/{{{NS_WSA}}}Action")
        # Without a MessageID the reply cannot be correlated (RelatesTo); a mismatched Action is not a Probe.
        if not message_id or action not in (None, WSD_PROBE_ACTION) or not self._probe_matches(probe, namespaces):
            return None
        return self._probe_matches_message(message_id).encode()

    def _probe_matches(self, probe: ET.Element, namespaces: dict[str, str]) -> bool:
        ours = {(NS_DN, "NetworkVideoTransmitter"), (NS_TDS, "Device")}
        for qname in (_text(probe, f"{{{NS_WSD}}}Types") or "").split():
            prefix, _, local = qname.rpartition(":")
            namespace = namespaces.get(prefix)
            # An unresolvable prefix is matched by local name: lenient, like most camera firmware.
            if not any(local == name and namespace in (None, ns) for ns, name in ours):
                return False
        scopes_node = probe.find(f"{{{NS_WSD}}}Scopes")
        wanted = (scopes_node.text or "").split() if scopes_node is not None else []
        match_by = scopes_node.get("MatchBy", WSD_MATCH_RFC3986) if scopes_node is not None else WSD_MATCH_RFC3986
        for scope in wanted:
            if match_by == WSD_MATCH_RFC3986:
                # RFC 3986 matching: the probe scope is a whole-segment prefix of one of ours.
                prefix = scope.rstrip("/")
                if not any(s == prefix or s.startswith(prefix + "/") for s in self.scopes):
                    return False
            elif scope not in self.scopes:
                return False
        return True

    def _probe_matches_message(self, relates_to: str) -> str:
        with self._message_lock:
            self._message_number += 1
            number = self._message_number
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<env:Envelope xmlns:env="{NS_SOAP12}" xmlns:wsa="{NS_WSA}" xmlns:wsd="{NS_WSD}" '
            f'xmlns:dn="{NS_DN}" xmlns:tds="{NS_TDS}">'
            "<env:Header>"
            f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>"
            f"<wsa:RelatesTo>{escape(relates_to)}</wsa:RelatesTo>"
            f"<wsa:To>{WSA_ANONYMOUS}</wsa:To>"
            f"<wsa:Action>{WSD_PROBE_MATCHES_ACTION}</wsa:Action>"
            f'<wsd:AppSequence InstanceId="{self._instance_id}" MessageNumber="{number}"/>'
            "</env:Header>"
            "<env:Body><wsd:ProbeMatches><wsd:ProbeMatch>"
            f"<wsa:EndpointReference><wsa:Address>{escape(self.endpoint_uuid)}</wsa:Address></wsa:EndpointReference>"
            "<wsd:Types>dn:NetworkVideoTransmitter tds:Device</wsd:Types>"
            f"<wsd:Scopes>{escape(' '.join(self.scopes))}</wsd:Scopes>"
            f"<wsd:XAddrs>{escape(self.xaddr)}</wsd:XAddrs>"
            "<wsd:MetadataVersion>1</wsd:MetadataVersion>"
            "</wsd:ProbeMatch></wsd:ProbeMatches></env:Body></env:Envelope>"
        )


__all__ = ["OnvifSimulator", "SimProfile", "SoapFault", "password_digest"]
