"""ONVIF probe: what a field technician needs to register a camera (identity, media profiles, stream and snapshot
URIs, camera clock offset), with one specific, actionable error per way a camera can fail.

Built on zeep with the WSDLs that onvif-zeep 0.2.12 installs (``<site-packages>/wsdl``); the WSDLs are read from
disk only, never fetched. onvif-zeep's ``ONVIFCamera`` is deliberately not used, because for a probe it:

- sends its first GetSystemDateAndTime with a UsernameToken stamped with the *host* clock (``adjust_time=True``
  only fixes later requests), so a camera that checks every token it sees rejects the very request that would
  tell us its clock;
- opens an event PullPoint subscription on the camera at construction (a leaked subscription per probe; cheap
  cameras allow only a few);
- removes ``http_proxy``/``https_proxy`` from ``os.environ`` when constructed, and its package calls
  ``logging.basicConfig(level=INFO)`` on import (so this module never imports ``onvif``);
- wraps every error into ``ONVIFError("Unknown error: ...")``, so refused/timeout/401/not-ONVIF look alike;
- has no request timeout unless a transport is passed, and needs ``UTCDateTime`` (optional in the schema).

Its clock arithmetic itself is right (camera UTC minus naive ``utcnow()``, added to a naive ``utcnow()`` and
stamped as UTC by zeep); this module applies the same correction through its own token (``_OffsetUsernameToken``).
"""

from __future__ import annotations

import dataclasses
import email.utils
import errno
import functools
import http.client
import importlib.util
import logging
import re
import socket
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from lxml import etree
from requests.auth import HTTPDigestAuth
from zeep import Client, Settings, Transport
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault, TransportError
from zeep.wsdl import Document
from zeep.wsse.username import UsernameToken

from jifang.errors import (
    CameraClockSkewError,
    CameraError,
    CameraTimeoutError,
    CameraUnauthorizedError,
    CameraUnreachableError,
    NoMediaProfileError,
    NotOnvifError,
)

log = logging.getLogger("jifang.onvif")

DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
SOAP_ENVELOPES = {"http://www.w3.org/2003/05/soap-envelope", "http://schemas.xmlsoap.org/soap/envelope/"}

# Above this the camera clock is called out in an authentication error: real cameras accept tokens whose Created
# time is a few seconds off, so a wrong password is the likelier cause below it.
SKEW_NOTE_SECONDS = 60.0
# Above this a refused token is retried once stamped with the host clock: some cameras report one clock in
# GetSystemDateAndTime (e.g. local time labelled UTC) but check tokens against another.
SKEW_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class StreamProfile:
    token: str
    name: str
    encoding: str
    width: int
    height: int
    fps: float | None
    stream_uri: str | None
    snapshot_uri: str | None


@dataclass(frozen=True)
class DeviceProbe:
    host: str
    port: int
    manufacturer: str
    model: str
    firmware: str
    serial: str
    hardware_id: str
    profiles: list[StreamProfile]
    main_stream_uri: str
    sub_stream_uri: str | None
    snapshot_uri: str | None
    clock_offset_seconds: float  # camera UTC minus host UTC (GetSystemDateAndTime)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``jifang camera probe --json``); holds no credentials because the result never has any."""
        return dataclasses.asdict(self)


def wsdl_dir() -> Path:
    """The WSDL folder installed by onvif-zeep (``<site-packages>/wsdl``), found without importing ``onvif``
    (its import configures the root logger)."""
    candidates = []
    spec = importlib.util.find_spec("onvif")
    if spec is not None and spec.origin:
        candidates.append(Path(spec.origin).resolve().parent.parent / "wsdl")
    candidates.append(Path(sysconfig.get_paths()["purelib"]) / "wsdl")
    for candidate in candidates:
        if (candidate / "devicemgmt.wsdl").is_file() and (candidate / "media.wsdl").is_file():
            return candidate
    raise CameraError("ONVIF WSDL files not found: install onvif-zeep==0.2.12 (it ships them under site-packages/wsdl)")


class _LocalWsdlTransport(Transport):
    """A zeep transport that reads WSDL/XSD only from disk and remembers the last HTTP response, so errors can be
    classified from the status, headers and body rather than from zeep's exception text."""

    def __init__(self, timeout: float) -> None:
        super().__init__(timeout=timeout, operation_timeout=timeout)
        self.last_response: requests.Response | None = None

    def _load_remote_data(self, url: str) -> bytes:
        # Never the network for schemas: a camera site has no Internet and a probe must not depend on it.
        raise CameraError(f"ONVIF WSDL refers to a remote document ({url}); the installed WSDLs are incomplete")

    def post(self, address: str, message: bytes, headers: dict[str, str]) -> requests.Response:
        self.last_response = None
        response = super().post(address, message, headers)
        self.last_response = response
        return response


# strict=False: camera firmware often deviates from the schema in ways that do not matter for a probe.
_SETTINGS = Settings(strict=False, xml_huge_tree=True, forbid_dtd=True)


@functools.cache
def _wsdl_document(name: str) -> Document:
    """A parsed WSDL, shared by all probes: parsing costs ~0.05 s per file, which adds up for periodic health
    probes of many cameras. A Document is read-only after parsing, and each Client posts through its own
    transport, so sharing it across threads and cameras is safe."""
    return Document(str(wsdl_dir() / name), _LocalWsdlTransport(timeout=5.0), settings=_SETTINGS)


class _OffsetUsernameToken(UsernameToken):
    """WS-Security UsernameToken (PasswordDigest) whose Created time is the host clock plus the camera's offset,
    so a camera with a wrong clock still finds the token fresh. A fresh nonce and time for every request."""

    def __init__(self, username: str, password: str, offset_seconds: float) -> None:
        # zulu_timestamp: "...Z" is what the ONVIF core spec shows; some firmware does not parse "+00:00".
        super().__init__(username, password, use_digest=True, zulu_timestamp=True)
        self.offset_seconds = offset_seconds

    def apply(self, envelope: Any, headers: Any) -> Any:
        self.created = datetime.now(UTC) + timedelta(seconds=self.offset_seconds)
        try:
            return super().apply(envelope, headers)
        finally:
            self.created = None


class _AuthRefused(Exception):
    """Internal: the camera refused the request's authentication (SOAP NotAuthorized-like fault or HTTP 401/403).
    Never leaves this module: it becomes CameraUnauthorizedError or CameraClockSkewError."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(type(cause).__name__)
        self.cause = cause


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


class _Session:
    """One probe's connection to one camera: zeep clients, credentials, clock offset, error classification."""

    def __init__(self, host: str, port: int, username: str, password: str, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.where = f"camera {_address(host, port)}"
        self.username, self.password = username, password
        self.device_url = f"http://{_address(host, port)}/onvif/device_service"
        self.transport = _LocalWsdlTransport(timeout)
        if username:
            # Some cameras (ONVIF Profile T, newer firmware) also demand HTTP digest; requests only answers a
            # "WWW-Authenticate: Digest" challenge with it, so cameras that do not ask never see it.
            self.transport.session.auth = HTTPDigestAuth(username, password)
        self.transport.session.trust_env = False  # a probe goes straight to the camera, never through a proxy
        self.device_client = Client(_wsdl_document("devicemgmt.wsdl"), transport=self.transport, settings=_SETTINGS)
        self.media_client = Client(_wsdl_document("media.wsdl"), transport=self.transport, settings=_SETTINGS)
        self.device = self.device_client.create_service(f"{{{DEVICE_NS}}}DeviceBinding", self.device_url)
        self.token_offset = 0.0
        self.last_what = ""

    def use_token(self, offset_seconds: float | None) -> None:
        """Sign the next requests with a token stamped camera-time (offset), or send none (None)."""
        token = None
        if offset_seconds is not None and self.username:
            token = _OffsetUsernameToken(self.username, self.password, offset_seconds)
        self.device_client.wsse = token
        self.media_client.wsse = token
        if offset_seconds is not None:
            self.token_offset = offset_seconds

    # --- calls and error classification ---------------------------------------------------------------------

    def call(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """Call one ONVIF operation. Connection problems become the specific camera errors, refused
        authentication becomes _AuthRefused, a non-SOAP answer NotOnvifError; other SOAP faults stay zeep Faults
        for the caller to judge (e.g. "snapshot not supported")."""
        self.last_what = what
        try:
            return fn(**kwargs)
        except requests.exceptions.ConnectTimeout:
            raise CameraUnreachableError(
                f"{self.where}: no TCP connection within {self.timeout:g} s — check the address, that the camera "
                "is powered and on this network, and firewalls") from None
        except requests.exceptions.Timeout:
            raise CameraTimeoutError(
                f"{self.where}: accepted the connection but did not answer {what} within {self.timeout:g} s — the "
                "camera is overloaded or this port is not its ONVIF (HTTP) port") from None
        except requests.exceptions.ConnectionError as exc:
            raise self._connection_error(exc) from None
        except requests.exceptions.RequestException as exc:
            raise CameraError(f"{self.where}: HTTP request for {what} failed ({type(exc).__name__})") from None
        except (Fault, TransportError) as exc:
            if self.is_auth_failure(exc):
                raise _AuthRefused(exc) from None
            if isinstance(exc, Fault) and self.is_soap_reply():
                raise
            raise self._not_onvif(what, exc) from None
        except (ZeepError, etree.LxmlError, ValueError) as exc:
            # zeep's XMLSyntaxError ("no SOAP Envelope"), parse errors, impossible values in a reply.
            raise self._not_onvif(what, exc) from None

    def _connection_error(self, exc: BaseException) -> CameraError:
        chain = list(_exception_chain(exc))
        if any(isinstance(e, socket.gaierror) or type(e).__name__ == "NameResolutionError" for e in chain):
            return CameraUnreachableError(f"{self.where}: the host name does not resolve — check the spelling or "
                                          "use the camera's IP address")
        if any(isinstance(e, ConnectionRefusedError) for e in chain):
            return CameraUnreachableError(f"{self.where}: connection refused — nothing listens on port {self.port}; "
                                          "check the ONVIF port in the camera's network settings (often 80, 8000 "
                                          "or 8899)")
        unreachable = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.EADDRNOTAVAIL}
        if any(isinstance(e, OSError) and e.errno in unreachable for e in chain):
            return CameraUnreachableError(f"{self.where}: no route to the host — check the address and that this "
                                          "machine is on the camera's network")
        if any(isinstance(e, http.client.BadStatusLine) and not isinstance(e, http.client.RemoteDisconnected)
               for e in chain):
            return NotOnvifError(f"{self.where}: something answers on this port, but not with HTTP — it is not an "
                                 "ONVIF port (RTSP is usually 554; ONVIF often 80, 8000 or 8899)")
        return CameraUnreachableError(f"{self.where}: the connection failed or was closed without an answer — "
                                      "check the address and port")

    def _not_onvif(self, what: str, exc: BaseException | None = None) -> CameraError:
        response = self.transport.last_response
        if response is None:
            detail = type(exc).__name__ if exc else "no response"
            return CameraError(f"{self.where}: {what} failed ({detail}) — not a usable ONVIF answer")
        kind = response.headers.get("Content-Type", "no content type").split(";")[0].strip() or "no content type"
        return NotOnvifError(f"{self.where}: HTTP {response.status_code} ({kind}) to ONVIF {what} at "
                             f"{urlsplit(response.url).path or '/'} is not a SOAP answer — this is not an ONVIF "
                             "device service; check the ONVIF port (often 80, 8000 or 8899) and that ONVIF is "
                             "enabled on the camera")

    def is_soap_reply(self) -> bool:
        response = self.transport.last_response
        if response is None or not response.content:
            return False
        try:
            root = etree.fromstring(response.content, etree.XMLParser(resolve_entities=False, no_network=True))
        except etree.LxmlError:
            return False
        return etree.QName(root).namespace in SOAP_ENVELOPES and etree.QName(root).localname == "Envelope"

    def is_auth_failure(self, exc: Exception) -> bool:
        response = self.transport.last_response
        if response is not None and response.status_code in (401, 403):
            return True
        if isinstance(exc, TransportError) and exc.status_code in (401, 403):
            return True
        if isinstance(exc, Fault) and self.is_soap_reply():
            words = " ".join([str(exc.message or ""), str(exc.code or "")]
                             + [str(getattr(q, "localname", q)) for q in (exc.subcodes or [])]).lower()
            return bool(re.search(r"notauthori[sz]ed|not authori[sz]ed|unauthori[sz]ed|failedauthentication|"
                                  r"authenticat|messageexpired|invalidsecurity|forbidden", words))
        return False

    def is_expired_token(self, exc: Exception) -> bool:
        """The camera said explicitly that the token's time is the problem (WS-Security MessageExpired)."""
        if not isinstance(exc, Fault):
            return False
        words = " ".join([str(exc.message or "")] + [str(getattr(q, "localname", q)) for q in (exc.subcodes or [])])
        return bool(re.search(r"messageexpired|expired|stale|created time|timestamp", words.lower()))

    def http_date_offset(self) -> float | None:
        """Camera clock from the HTTP Date header of the last answer: a rough (1 s) fallback when the camera
        refuses GetSystemDateAndTime without authentication (which ONVIF allows some cameras to do)."""
        response = self.transport.last_response
        date = response.headers.get("Date") if response is not None else None
        if not date:
            return None
        try:
            camera = email.utils.parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return None
        if camera.tzinfo is None:
            return None
        return round((camera - datetime.now(UTC)).total_seconds() + 0.5, 3)

    def unauthorized(self, offset: float, exc: Exception | None = None) -> CameraError:
        if exc is not None and self.is_expired_token(exc):
            return CameraClockSkewError(
                f"{self.where}: ONVIF refused the token as expired although it carried the camera's own time "
                f"(camera clock {offset:+.0f} s from this host) — set the camera's time/NTP, then probe again")
        message = f"{self.where}: ONVIF 401 not authorized — check the user name and password"
        if not self.username:
            message = f"{self.where}: ONVIF 401 not authorized — this camera needs a user name and password"
        response = self.transport.last_response
        challenge = response.headers.get("WWW-Authenticate", "") if response is not None else ""
        if challenge.lower().startswith("basic") and not self.is_soap_reply():
            message += (" (this port asks for HTTP Basic auth with a non-SOAP page, which ONVIF does not do: it may "
                        "be the camera's web page rather than its ONVIF service)")
        elif abs(offset) > SKEW_NOTE_SECONDS:
            message += (f" (the camera clock is {offset:+.0f} s from this host; tokens stamped with the camera's "
                        "time and with this host's time were both refused, so a wrong password is likelier, but "
                        "setting the camera's time/NTP rules the clock out)")
        return CameraUnauthorizedError(message)

    def authed(self, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """Call an operation that needs authentication; if the token is refused while the camera clock is off,
        retry once stamped with the host clock before calling it an authentication failure."""
        try:
            return self.call(what, fn, **kwargs)
        except _AuthRefused as refused:
            first = refused.cause
        offset = self.token_offset
        if self.username and abs(offset) > SKEW_RETRY_SECONDS:
            self.use_token(0.0)
            try:
                result = self.call(what, fn, **kwargs)
            except _AuthRefused:
                self.use_token(offset)
            else:
                log.info("%s: token accepted only with this host's clock, although the camera reports %+.0f s",
                         self.where, offset)
                return result
        raise self.unauthorized(offset, first)


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps (requests -> urllib3 -> socket), each once."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for nested in (current.__cause__, current.__context__, getattr(current, "reason", None), *current.args):
            if isinstance(nested, BaseException):
                stack.append(nested)


def _camera_utc(reply: Any) -> datetime | None:
    """Camera time as UTC from a GetSystemDateAndTime reply; LocalDateTime with the POSIX TZ when UTCDateTime is
    missing (it is optional in the schema)."""
    utc = getattr(reply, "UTCDateTime", None)
    local = getattr(reply, "LocalDateTime", None)
    try:
        if utc is not None:
            return _to_datetime(utc)
        if local is not None:
            tz = getattr(getattr(reply, "TimeZone", None), "TZ", None) or ""
            return _to_datetime(local) + timedelta(seconds=_posix_tz_west_seconds(tz))
    except (AttributeError, TypeError, ValueError):
        return None
    return None


def _to_datetime(value: Any) -> datetime:
    d, t = value.Date, value.Time
    return datetime(int(d.Year), int(d.Month), int(d.Day), int(t.Hour), int(t.Minute), int(t.Second), tzinfo=UTC)


def _posix_tz_west_seconds(tz: str) -> int:
    """Seconds to add to local time to get UTC, from a POSIX TZ string ("CST-8" -> -28800). Unknown forms: 0."""
    match = re.match(r"^\s*(?:<[^>]*>|[A-Za-z]{3,})([+-]?)(\d{1,2})(?::(\d{2}))?(?::(\d{2}))?", tz)
    if not match:
        return 0
    sign = -1 if match.group(1) == "-" else 1
    return sign * (int(match.group(2)) * 3600 + int(match.group(3) or 0) * 60 + int(match.group(4) or 0))


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _same_host_url(url: str, host: str, port: int) -> str:
    """A service XAddr pointed at the address we actually reach the camera on. Cameras behind NAT or a port
    forward, and multi-homed ones, advertise their own internal address; the path is what matters."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.path:
        return f"http://{_address(host, port)}/onvif/device_service"
    if parts.hostname == host.strip("[]"):
        return url
    return urlunsplit((parts.scheme, _address(host, port), parts.path, parts.query, ""))


def probe(host: str, port: int = 80, username: str = "", password: str = "", timeout: float = 5.0) -> DeviceProbe:
    """Probe an ONVIF camera: identity, video profiles, main/sub RTSP URIs, snapshot URI and clock offset.

    ``timeout`` applies to each request. Raises CameraUnreachableError, CameraTimeoutError, NotOnvifError,
    CameraUnauthorizedError, CameraClockSkewError or NoMediaProfileError (all CameraError) with a one-line message
    that starts with "camera HOST:PORT:" and never contains the password.
    """
    session = _Session(host, port, username, password, timeout)
    try:
        return _probe(session)
    except Fault as exc:
        # A SOAP fault nobody above could interpret (e.g. GetProfiles refused for a reason other than auth).
        reason = _text(exc.message) or "no reason given"
        raise CameraError(f"{session.where}: ONVIF {session.last_what} failed: {reason}") from None


def _probe(session: _Session) -> DeviceProbe:
    offset = _clock_offset(session)
    session.use_token(offset)

    info = session.authed("GetDeviceInformation", session.device.GetDeviceInformation)
    media = session.media_client.create_service(f"{{{MEDIA_NS}}}MediaBinding", _media_url(session))

    profiles_raw = session.authed("GetProfiles", media.GetProfiles) or []
    video = [p for p in profiles_raw if _video_size(p) is not None]
    if not video:
        raise NoMediaProfileError(
            f"{session.where}: ONVIF answers but offers no media profile with a video encoder ({len(profiles_raw)} "
            "profile(s) in all) — create a video stream profile in the camera's web page")

    profiles = [_profile(session, media, raw) for raw in video]
    with_uri = [p for p in profiles if p.stream_uri]
    if not with_uri:
        raise NoMediaProfileError(f"{session.where}: no media profile returned an RTSP stream URI (GetStreamUri "
                                  "RTP-Unicast/RTSP) — enable RTSP on the camera")
    # Highest resolution (then frame rate) is the main stream; the lowest other one is the sub stream.
    by_size = sorted(with_uri, key=lambda p: (p.width * p.height, p.fps or 0.0), reverse=True)
    main, sub = by_size[0], (by_size[-1] if len(by_size) > 1 else None)
    return DeviceProbe(
        host=session.host, port=session.port,
        manufacturer=_text(getattr(info, "Manufacturer", "")), model=_text(getattr(info, "Model", "")),
        firmware=_text(getattr(info, "FirmwareVersion", "")), serial=_text(getattr(info, "SerialNumber", "")),
        hardware_id=_text(getattr(info, "HardwareId", "")),
        profiles=profiles, main_stream_uri=main.stream_uri or "", sub_stream_uri=sub.stream_uri if sub else None,
        snapshot_uri=main.snapshot_uri, clock_offset_seconds=offset,
    )


def _clock_offset(session: _Session) -> float:
    """Camera UTC minus host UTC. Asked without authentication first, as ONVIF intends (no token can be right
    before the camera clock is known); a camera that refuses is asked again with a token stamped with the time
    of its HTTP Date header (or of this host)."""
    session.use_token(None)
    started = time.time()
    try:
        reply = session.call("GetSystemDateAndTime", session.device.GetSystemDateAndTime)
    except _AuthRefused as refused:
        if not session.username:
            raise session.unauthorized(0.0, refused.cause) from None
        session.use_token(session.http_date_offset() or 0.0)
        started = time.time()
        reply = session.authed("GetSystemDateAndTime", session.device.GetSystemDateAndTime)
    except Fault as exc:
        # ONVIF requires GetSystemDateAndTime on every device service: a SOAP server that refuses it otherwise
        # is something else.
        raise NotOnvifError(f"{session.where}: answers SOAP but refuses ONVIF GetSystemDateAndTime "
                            f"({_text(exc.message) or 'no reason given'}) — not an ONVIF device service") from None
    finished = time.time()
    camera = _camera_utc(reply)
    if camera is None:
        log.warning("%s: GetSystemDateAndTime has no usable date; assuming the camera clock is right", session.where)
        return session.token_offset
    # Camera seconds are truncated, so its true time is on average half a second later than shown; the host
    # reference is the middle of the request.
    host_mid = datetime.fromtimestamp((started + finished) / 2, UTC)
    return round((camera - host_mid).total_seconds() + 0.5, 3)


def _media_url(session: _Session) -> str:
    """The media service XAddr (GetCapabilities, then GetServices), on the address we reach the camera at."""
    try:
        caps = session.authed("GetCapabilities", session.device.GetCapabilities, Category="Media")
        xaddr = _text(getattr(getattr(caps, "Media", None), "XAddr", None))
        if xaddr:
            return _same_host_url(xaddr, session.host, session.port)
    except Fault as exc:
        log.debug("%s: GetCapabilities refused (%s); trying GetServices", session.where, exc.message)
    try:
        services = session.authed("GetServices", session.device.GetServices, IncludeCapability=False) or []
        for service in services:
            if _text(getattr(service, "Namespace", None)) == MEDIA_NS and _text(getattr(service, "XAddr", None)):
                return _same_host_url(_text(service.XAddr), session.host, session.port)
    except Fault as exc:
        log.debug("%s: GetServices refused (%s); using the device service URL", session.where, exc.message)
    # Many cameras serve every service on the device service URL.
    return session.device_url


def _video_size(raw: Any) -> tuple[int, int] | None:
    encoder = getattr(raw, "VideoEncoderConfiguration", None)
    resolution = getattr(encoder, "Resolution", None)
    try:
        width, height = int(resolution.Width), int(resolution.Height)
    except (AttributeError, TypeError, ValueError):
        return None
    return (width, height) if width > 0 and height > 0 else None


def _profile(session: _Session, media: Any, raw: Any) -> StreamProfile:
    encoder = raw.VideoEncoderConfiguration
    width, height = _video_size(raw) or (0, 0)
    rate = getattr(getattr(encoder, "RateControl", None), "FrameRateLimit", None)
    try:
        fps = float(rate) if rate is not None and float(rate) > 0 else None
    except (TypeError, ValueError):
        fps = None
    token = _text(raw.token)
    setup = {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}}
    stream_uri = _uri(session, "GetStreamUri", media.GetStreamUri, StreamSetup=setup, ProfileToken=token)
    try:
        snapshot_uri = _uri(session, "GetSnapshotUri", media.GetSnapshotUri, ProfileToken=token)
    except CameraUnauthorizedError:
        # The user could list profiles and streams, so this is a per-operation right (some firmware reserves
        # snapshots for administrators): no snapshot, not a failed probe.
        log.info("%s: GetSnapshotUri not allowed for this user", session.where)
        snapshot_uri = None
    return StreamProfile(
        token=token, name=_text(getattr(raw, "Name", "")) or token, encoding=_text(getattr(encoder, "Encoding", "")),
        width=width, height=height, fps=fps, stream_uri=stream_uri, snapshot_uri=snapshot_uri,
    )


def _uri(session: _Session, what: str, fn: Callable[..., Any], **kwargs: Any) -> str | None:
    """A MediaUri's Uri, or None when the camera refuses (e.g. no snapshot support: ActionNotSupported)."""
    try:
        reply = session.authed(what, fn, **kwargs)
    except Fault as exc:
        log.debug("%s: %s(%s) refused: %s", session.where, what, kwargs.get("ProfileToken"), exc.message)
        return None
    return _text(getattr(reply, "Uri", None)) or None
