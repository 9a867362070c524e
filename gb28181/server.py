"""The platform's SIP server (UDP and TCP on one port): registration with digest auth, keepalives, Catalog and
DeviceInfo, and the client side of INVITE/ACK/BYE towards devices.

A device's address is the source of its packets (behind NAT the Contact header names an address nobody can
reach); for TCP the platform answers and asks on the device's own connection. Bad input (a malformed
message, a 64 KiB junk datagram, an unknown device) is counted and logged once per kind and source; nothing a
device sends can stop the server.
"""

from __future__ import annotations

import logging
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from jifang.gb28181 import manscdp, sip
from jifang.gb28181.devices import DeviceStore
from jifang.gb28181.metrics import GbMetrics
from jifang.gb28181.sip import SipError, SipMessage

from jifang.config import Gb28181Config
from jifang.errors import ConfigError

log = logging.getLogger("jifang.gb28181")

CST = timezone(timedelta(hours=8))  # devices set their clock from the Date header: China Standard Time
NONCE_SECONDS = 300
RECV_BYTES = 65535


@dataclass
class DeviceState:
    id: str
    transport: str
    addr: tuple[str, int]
    call_id: str
    expires_at: float  # monotonic
    last_keepalive: float  # monotonic
    conn: socket.socket | None = None
    online: bool = True
    epoch: int = 0  # increases each time the device (re)appears; media sources re-invite on a change


@dataclass
class Dialog:
    device_id: str
    channel_id: str
    call_id: str
    from_tag: str
    to_tag: str
    cseq: int
    to_uri: str
    answer: SipMessage | None = None


@dataclass
class _Pending:
    done: threading.Event = field(default_factory=threading.Event)
    response: SipMessage | None = None


class SipServer:
    def __init__(self, config: Gb28181Config, store: DeviceStore, metrics: GbMetrics,
                 clock: Callable[[], datetime]) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self.port = config.port
        self.devices: dict[str, DeviceState] = {}
        self.on_offline: list[Callable[[str], None]] = []  # called with the device ID
        self.on_bye: list[Callable[[str], None]] = []  # called with the Call-ID of a dialog the device ended
        self._lock = threading.RLock()
        self._nonces: dict[str, float] = {}
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._catalogs: dict[tuple[str, int], list[manscdp.ChannelItem]] = {}
        self._catalog_done: dict[tuple[str, int], threading.Event] = {}
        self._cseq = 0
        self._warned: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._tcp: socket.socket | None = None

    # lifecycle

    def start(self) -> int:
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            udp.bind((self.config.host, self.config.port))
            self.port = udp.getsockname()[1]
            tcp.bind((self.config.host, self.port))
        except OSError as exc:
            udp.close()
            tcp.close()
            raise ConfigError(f"GB/T 28181 SIP port {self.config.host}:{self.config.port}: {exc.strerror}; "
                              "choose another gb28181.port") from None
        udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        udp.settimeout(0.5)
        tcp.listen(64)
        tcp.settimeout(0.5)
        self._udp, self._tcp = udp, tcp
        for target, name in ((self._udp_loop, "sip-udp"), (self._accept_loop, "sip-tcp"),
                             (self._watch_loop, "sip-keepalive")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("GB/T 28181 SIP server on %s:%d (UDP and TCP), platform %s, domain %s", self.config.host,
                 self.port, self.config.platform_id, self.config.domain)
        return self.port

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(3)
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()
        with self._lock:
            for state in self.devices.values():
                if state.conn is not None:
                    state.conn.close()

    def is_online(self, device_id: str) -> bool:
        state = self.devices.get(device_id)
        return state is not None and state.online

    def epoch(self, device_id: str) -> int:
        state = self.devices.get(device_id)
        return state.epoch if state is not None else -1

    # receiving

    def _udp_loop(self) -> None:
        assert self._udp is not None
        while not self._stop.is_set():
            try:
                data, addr = self._udp.recvfrom(RECV_BYTES)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                continue
            if not data.strip():
                continue  # CRLF keep-alive
            try:
                message = sip.parse(data)
            except SipError as exc:
                self._bad("malformed" if len(data) < sip.MAX_MESSAGE_BYTES else "oversize", addr, str(exc))
                continue
            self._dispatch(message, addr, "udp", None)

    def _accept_loop(self) -> None:
        assert self._tcp is not None
        while not self._stop.is_set():
            try:
                conn, addr = self._tcp.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._tcp_loop, args=(conn, addr), name="sip-tcp-conn", daemon=True).start()

    def _tcp_loop(self, conn: socket.socket, addr: tuple[str, int]) -> None:
        framer = sip.StreamFramer()
        conn.settimeout(1.0)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(RECV_BYTES)
                except TimeoutError:
                    continue
                except OSError:
                    break
                if not data:
                    break
                try:
                    messages = framer.feed(data)
                except SipError as exc:
                    self._bad("malformed", addr, f"{exc}; TCP connection closed")
                    break
                for message in messages:
                    self._dispatch(message, addr, "tcp", conn)
        with self._lock:
            for state in self.devices.values():
                if state.conn is conn:
                    state.conn = None

    def _bad(self, kind: str, addr: tuple[str, int], detail: str) -> None:
        self.metrics.bad_input.labels(kind).inc()
        key = (kind, addr[0])
        if key not in self._warned:  # once per kind and source: a flood must not flood the log
            self._warned.add(key)
            log.warning("GB/T 28181: %s input from %s:%d refused: %s", kind, addr[0], addr[1], detail[:200])
        else:
            log.debug("GB/T 28181: %s input from %s:%d refused: %s", kind, addr[0], addr[1], detail[:200])

    def _dispatch(self, message: SipMessage, addr: tuple[str, int], transport: str,
                  conn: socket.socket | None) -> None:
        try:
            if not message.is_request:
                self._on_response(message)
            elif message.method == "REGISTER":
                self._on_register(message, addr, transport, conn)
            elif message.method == "MESSAGE":
                self._on_message(message, addr, transport, conn)
            elif message.method == "BYE":
                self._reply(message, 200, addr, transport, conn)
                for callback in self.on_bye:
                    callback(message.call_id)
            elif message.method == "ACK":
                pass
            else:
                self._reply(message, 405 if message.method != "OPTIONS" else 200, addr, transport, conn)
        except SipError as exc:
            self._bad("malformed", addr, str(exc))
            self._reply(message, 400, addr, transport, conn)
        except Exception:  # one bad exchange must never stop the server
            log.exception("GB/T 28181: handling %s from %s:%d failed", message.method or message.status, *addr)

    def _reply(self, request: SipMessage, code: int, addr: tuple[str, int], transport: str,
               conn: socket.socket | None, extra: list[tuple[str, str]] | None = None) -> None:
        if request.method == "ACK" or not request.is_request:
            return
        self._send(sip.response(request, code, extra), addr, transport, conn)

    def _send(self, message: SipMessage, addr: tuple[str, int], transport: str, conn: socket.socket | None) -> bool:
        data = message.to_bytes()
        try:
            if transport == "tcp":
                if conn is None:
                    return False
                with self._lock:
                    conn.sendall(data)
            else:
                assert self._udp is not None
                self._udp.sendto(data, addr)
            return True
        except OSError as exc:
            log.info("GB/T 28181: cannot send to %s:%d over %s (%s)", addr[0], addr[1], transport, exc.strerror)
            return False

    # registration

    def _on_register(self, request: SipMessage, addr: tuple[str, int], transport: str,
                     conn: socket.socket | None) -> None:
        device_id = sip.user_of(request.header("from") or "") or sip.user_of(request.header("to") or "")
        row = self.store.device(device_id) if device_id.isdigit() and len(device_id) == 20 else None
        if row is None:
            self.metrics.registration_failures.labels("unknown_device").inc()
            self._bad("unknown_device", addr, f"REGISTER from device {device_id[:40]!r}, which is not added "
                      "(jifang gb28181 add-device)")
            self._reply(request, 403, addr, transport, conn)
            return
        auth = sip.parse_digest(request.header("authorization") or "")
        if not auth:
            self._challenge(request, addr, transport, conn)
            return
        issued = self._nonces.get(auth.get("nonce", ""))
        if issued is None or time.monotonic() - issued > NONCE_SECONDS:
            self._challenge(request, addr, transport, conn)  # stale nonce: challenge again
            return
        password = self.store.password(device_id) or ""
        expected = sip.digest_response(auth.get("username", ""), auth.get("realm", ""), password, "REGISTER",
                                       auth.get("uri", ""), auth["nonce"], auth.get("qop", ""), auth.get("nc", ""),
                                       auth.get("cnonce", ""))
        if not secrets.compare_digest(expected, auth.get("response", "").lower()) or \
                auth.get("username") != device_id:
            self.metrics.registration_failures.labels("bad_password").inc()
            log.warning("GB/T 28181: device %s from %s:%d: wrong password (digest mismatch); refused", device_id,
                        *addr)
            self._reply(request, 403, addr, transport, conn)
            return
        self._nonces.pop(auth["nonce"], None)
        expires = self._expires(request)
        now = time.monotonic()
        with self._lock:
            state = self.devices.get(device_id)
            if expires == 0:
                self._reply(request, 200, addr, transport, conn, [("Expires", "0")])
                self.metrics.registrations.labels("unregister").inc()
                log.info("GB/T 28181: device %s unregistered", device_id)
                if state is not None and state.online:
                    self._go_offline(state, "unregistered")
                return
            renewal = state is not None and state.online and state.call_id == request.call_id
            if state is None:
                state = DeviceState(device_id, transport, addr, request.call_id, 0, now)
                self.devices[device_id] = state
            elif not state.online:
                state.epoch += 1
            state.online = True
            state.transport, state.addr, state.call_id = transport, addr, request.call_id
            state.conn = conn if transport == "tcp" else None
            state.expires_at = now + expires
            state.last_keepalive = now
        date = self.clock().astimezone(CST).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        contact = request.header("contact") or f"<sip:{device_id}@{addr[0]}:{addr[1]}>"
        self._reply(request, 200, addr, transport, conn,
                    [("Contact", contact), ("Expires", str(expires)), ("Date", date)])
        at = self.clock()
        self.store.registered(device_id, addr[0], addr[1], transport, at, at + timedelta(seconds=expires))
        self.metrics.registrations.labels("renewal" if renewal else "new").inc()
        self._update_online_gauge()
        if not renewal:
            log.info("GB/T 28181: device %s registered from %s:%d over %s", device_id, addr[0], addr[1],
                     transport.upper())
            threading.Thread(target=self._after_register, args=(device_id,), daemon=True).start()

    def _expires(self, request: SipMessage) -> int:
        value = request.header("expires")
        contact = request.header("contact") or ""
        match = re.search(r";\s*expires=(\d+)", contact)
        try:
            asked = int(value) if value is not None else int(match.group(1)) if match else self.config.register_expires
        except ValueError:
            asked = self.config.register_expires
        return 0 if asked == 0 else max(60, min(asked, self.config.register_expires))

    def _challenge(self, request: SipMessage, addr: tuple[str, int], transport: str,
                   conn: socket.socket | None) -> None:
        nonce = secrets.token_hex(16)
        now = time.monotonic()
        self._nonces = {n: t for n, t in self._nonces.items() if now - t < NONCE_SECONDS}
        self._nonces[nonce] = now
        header = f'Digest realm="{self.config.domain}", nonce="{nonce}", qop="auth", algorithm=MD5'
        self._reply(request, 401, addr, transport, conn, [("WWW-Authenticate", header)])

    def _after_register(self, device_id: str) -> None:
        """Ask a newly registered device for its channels and identity."""
        try:
            self.query(device_id, "DeviceInfo")
            self.catalog(device_id)
        except Exception:
            log.exception("GB/T 28181: catalog query to device %s failed", device_id)

    # keepalive and offline

    def _watch_loop(self) -> None:
        while not self._stop.wait(1.0):
            now = time.monotonic()
            limit = self.config.keepalive_interval * self.config.keepalive_count
            with self._lock:
                states = list(self.devices.values())
            for state in states:
                self.metrics.keepalive_age.labels(state.id).set(round(now - state.last_keepalive, 1))
                if not state.online:
                    continue
                if now - state.last_keepalive > limit:
                    self._go_offline(state, f"no keepalive for {now - state.last_keepalive:.0f} s "
                                     f"({self.config.keepalive_count} x {self.config.keepalive_interval:g} s)")
                elif now > state.expires_at:
                    self._go_offline(state, "registration expired")

    def _go_offline(self, state: DeviceState, reason: str) -> None:
        with self._lock:
            if not state.online:
                return
            state.online = False
        log.warning("GB/T 28181: device %s is offline: %s", state.id, reason)
        self.store.set_online(state.id, False)
        self._update_online_gauge()
        for callback in self.on_offline:
            try:
                callback(state.id)
            except Exception:
                log.exception("GB/T 28181: offline handler for %s failed", state.id)

    def _update_online_gauge(self) -> None:
        self.metrics.devices_online.set(sum(1 for s in self.devices.values() if s.online))

    # MESSAGE from devices

    def _on_message(self, request: SipMessage, addr: tuple[str, int], transport: str,
                    conn: socket.socket | None) -> None:
        device_id = sip.user_of(request.header("from") or "")
        state = self.devices.get(device_id)
        if state is None:
            self._bad("unregistered", addr, f"MESSAGE from device {device_id[:40]!r}, which has not registered")
            self._reply(request, 403, addr, transport, conn)
            return
        body = manscdp.parse(request.body)  # SipError -> 400 in _dispatch
        self._reply(request, 200, addr, transport, conn)
        if body.cmd == "Keepalive":
            now = time.monotonic()
            with self._lock:
                state.last_keepalive = now
                if transport == "udp":
                    state.addr = addr  # NAT mappings move; answer where the device is now
                came_back = not state.online and now < state.expires_at
                if came_back:
                    state.online = True
                    state.epoch += 1
            self.store.set_online(device_id, state.online, self.clock())
            if came_back:
                log.info("GB/T 28181: device %s is back online (keepalive)", device_id)
                self._update_online_gauge()
        elif body.cmd == "Catalog" and body.root == "Response":
            self._collect_catalog(device_id, body)
        elif body.cmd == "DeviceInfo" and body.root == "Response":
            self.store.device_info(device_id, body.fields.get("Manufacturer", ""), body.fields.get("Model", ""),
                                   body.fields.get("Firmware", ""))

    def _collect_catalog(self, device_id: str, body: manscdp.Manscdp) -> None:
        key = (device_id, body.sn)
        with self._lock:
            if key not in self._catalogs and len(self._catalogs) >= 256:  # answers that never completed
                self._catalogs.pop(next(iter(self._catalogs)))
            items = self._catalogs.setdefault(key, [])
            items.extend(body.items)
            complete = body.sum_num is None or len({i.id for i in items}) >= body.sum_num
            if complete:
                self._catalogs.pop(key, None)
        if complete:
            count = self.store.update_channels(device_id, items, self.clock())
            log.info("GB/T 28181: device %s catalog: %d channels", device_id, count)
            done = self._catalog_done.pop(key, None)
            if done is not None:
                done.set()

    # requests to devices

    def _next_cseq(self) -> int:
        with self._lock:
            self._cseq += 1
            return self._cseq

    def _request(self, state: DeviceState, method: str, target: str, call_id: str, cseq: int, from_tag: str,
                 to_tag: str = "", extra: list[tuple[str, str]] | None = None, body: bytes = b"",
                 timeout: float | None = None) -> SipMessage | None:
        """Send a request to the device; with ``timeout`` wait for its final response (None: no answer)."""
        host, port = state.addr
        local = self.config.media_host
        to = f"<sip:{target}@{self.config.domain}>" + (f";tag={to_tag}" if to_tag else "")
        message = SipMessage(f"{method} sip:{target}@{host}:{port} SIP/2.0", [
            ("Via", f"SIP/2.0/{state.transport.upper()} {local}:{self.port};rport;branch={sip.new_branch()}"),
            ("From", f"<sip:{self.config.platform_id}@{self.config.domain}>;tag={from_tag}"),
            ("To", to), ("Call-ID", call_id), ("CSeq", f"{cseq} {method}"), ("Max-Forwards", "70"),
            ("User-Agent", "jifang"), *(extra or [])], body)
        pending = _Pending()
        if timeout is not None:
            self._pending[(call_id, cseq)] = pending
        try:
            if not self._send(message, state.addr, state.transport, state.conn):
                return None
            if timeout is None:
                return None
            pending.done.wait(timeout)
            return pending.response
        finally:
            self._pending.pop((call_id, cseq), None)

    def _on_response(self, response: SipMessage) -> None:
        number, _method = response.cseq
        pending = self._pending.get((response.call_id, number))
        if pending is not None and response.status >= 200:
            pending.response = response
            pending.done.set()

    def query(self, device_id: str, cmd: str, timeout: float = 5.0) -> int | None:
        """Send a MANSCDP Query; returns its SN when the device accepted it."""
        state = self.devices.get(device_id)
        if state is None or not state.online:
            return None
        sn = self._next_cseq()
        answer = self._request(state, "MESSAGE", device_id, secrets.token_hex(10), sn, sip.new_tag(),
                               extra=[("Content-Type", manscdp.CONTENT_TYPE)], body=manscdp.query(cmd, sn, device_id),
                               timeout=timeout)
        return sn if answer is not None and answer.status == 200 else None

    def catalog(self, device_id: str, wait: float = 0.0) -> bool:
        """Ask for the device's Catalog; with ``wait``, block until all SumNum items arrived (True) or not."""
        state = self.devices.get(device_id)
        if state is None or not state.online:
            return False
        sn = self._next_cseq()
        done = threading.Event()
        self._catalog_done[(device_id, sn)] = done
        answer = self._request(state, "MESSAGE", device_id, secrets.token_hex(10), sn, sip.new_tag(),
                               extra=[("Content-Type", manscdp.CONTENT_TYPE)],
                               body=manscdp.query("Catalog", sn, device_id), timeout=5.0)
        if answer is None or answer.status != 200:
            self._catalog_done.pop((device_id, sn), None)
            return False
        return done.wait(wait) if wait else True

    def invite(self, device_id: str, channel_id: str, ssrc: str, sdp: bytes) -> tuple[int, Dialog | None]:
        """INVITE the device's channel; returns the SIP status (0: no answer) and, on 2xx, the dialog (ACKed)."""
        state = self.devices.get(device_id)
        if state is None or not state.online:
            return 0, None
        call_id, from_tag, cseq = secrets.token_hex(12), sip.new_tag(), self._next_cseq()
        extra = [("Contact", f"<sip:{self.config.platform_id}@{self.config.media_host}:{self.port}>"),
                 ("Content-Type", "APPLICATION/SDP"),
                 ("Subject", f"{channel_id}:{ssrc},{self.config.platform_id}:0")]
        answer = self._request(state, "INVITE", channel_id, call_id, cseq, from_tag, extra=extra, body=sdp,
                               timeout=self.config.invite_timeout)
        if answer is None:
            self.metrics.invites.labels("timeout").inc()
            return 0, None
        if not 200 <= answer.status < 300:
            self.metrics.invites.labels(str(answer.status)).inc()
            return answer.status, None
        self.metrics.invites.labels("ok").inc()
        dialog = Dialog(device_id, channel_id, call_id, from_tag, sip.tag_of(answer.header("to") or ""), cseq,
                        channel_id, answer)
        self._request(state, "ACK", channel_id, call_id, cseq, from_tag, dialog.to_tag)
        return answer.status, dialog

    def bye(self, dialog: Dialog) -> None:
        state = self.devices.get(dialog.device_id)
        if state is None:
            return
        dialog.cseq += 1
        self._request(state, "BYE", dialog.channel_id, dialog.call_id, dialog.cseq, dialog.from_tag, dialog.to_tag,
                      timeout=2.0 if state.online else None)
