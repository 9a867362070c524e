"""A simulated GB/T 28181 device (camera or NVR) for demos and tests: ``jifang sim gb28181-device``.

It registers to a platform with digest auth (UDP or TCP), sends keepalives, answers Catalog (N channels,
optionally split over several MESSAGEs) and DeviceInfo, and answers INVITE by streaming a test pattern or a
video file as MPEG-PS over RTP (ffmpeg makes the PS, this module packetises it): TCP active (RFC 4571) or
UDP, with the SSRC of the offer's ``y=`` line, until BYE. Faults on demand: drop keepalives, refuse INVITEs,
answer or send another SSRC, reorder and lose UDP packets, H.265, and vanish.

Its SIP code is written independently of the platform's (jifang.gb28181) on purpose: a test of one against
the other would not catch a misreading of the standard that both shared.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
import secrets
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from jifang.errors import JifangError
from jifang.supervision import die_with_parent, stop_process

log = logging.getLogger("jifang.sim.gb28181")

RTP_PAYLOAD_BYTES = 1400


class SimDeviceError(JifangError):
    """The simulated device could not register or stream."""


@dataclass
class Msg:
    start: str
    headers: dict[str, str]
    body: bytes
    raw_headers: list[tuple[str, str]] = field(default_factory=list)

    def h(self, name: str) -> str:
        return self.headers.get(name.lower(), "")


def _parse(data: bytes) -> Msg:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers: dict[str, str] = {}
    raw = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        raw.append((name.strip(), value.strip()))
        headers.setdefault(name.strip().lower(), value.strip())
    length = int(headers.get("content-length", len(body)) or 0)
    return Msg(lines[0], headers, body[:length], raw)


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class Fault:
    drop_keepalives: bool = False
    refuse_invite: int = 0  # SIP code to answer INVITEs with (0: accept)
    answer_ssrc: str | None = None  # answer with this y= instead of the offer's
    send_ssrc: int | None = None  # stamp RTP with this SSRC instead of the offer's
    udp_reorder: float = 0.0  # share of UDP packets swapped with the next one
    udp_loss: float = 0.0  # share of UDP packets not sent
    vanished: bool = False  # sends nothing, answers nothing


class SimGbDevice:
    def __init__(self, device_id: str, password: str, server: tuple[str, int], platform_id: str,
                 domain: str, transport: str = "udp", channels: int = 4, split: int = 1,
                 keepalive_interval: float = 60.0, codec: str = "h264", video: Path | None = None,
                 width: int = 320, height: int = 240, fps: int = 10, bitrate_kbps: int = 300,
                 host: str = "127.0.0.1", ffmpeg: str = "ffmpeg") -> None:
        self.device_id, self.password, self.server = device_id, password, server
        self.platform_id, self.domain, self.transport = platform_id, domain, transport
        self.channel_ids = [f"{device_id[:10]}132{(int(device_id[13:]) * 10 + n + 1) % 10**7:07d}"
                            for n in range(channels)]
        self.split = max(1, split)
        self.keepalive_interval = keepalive_interval
        self.codec, self.video, self.width, self.height, self.fps = codec, video, width, height, fps
        self.bitrate_kbps, self.host, self.ffmpeg = bitrate_kbps, host, ffmpeg
        self.fault = Fault()
        self.registered = threading.Event()
        self.last_status = 0  # final status of the last REGISTER
        self.invites = 0
        self.streams: dict[str, _Stream] = {}  # by Call-ID
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._responses: dict[str, tuple[threading.Event, list[Msg]]] = {}
        self._cseq = 0
        self._tag = secrets.token_hex(4)
        self._call_id = secrets.token_hex(8) + "@" + host
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._local: tuple[str, int] = (host, 0)

    # lifecycle

    def start(self, wait: float = 10.0) -> None:
        if self.transport == "tcp":
            self._sock = socket.create_connection(self.server, timeout=5)
        else:
            self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self._sock.bind((self.host, 0))
        self._sock.settimeout(0.5)
        self._local = self._sock.getsockname()[:2]
        for target in (self._receive_loop, self._keepalive_loop):
            thread = threading.Thread(target=target, daemon=True, name=f"simgb-{target.__name__}")
            thread.start()
            self._threads.append(thread)
        self.register()
        if not self.registered.wait(wait):
            raise SimDeviceError(f"device {self.device_id}: registration failed (last status {self.last_status})")

    def stop(self) -> None:
        for stream in list(self.streams.values()):
            stream.stop()
        self._stop.set()
        for thread in self._threads:
            thread.join(3)
        if self._sock is not None:
            self._sock.close()

    @property
    def local(self) -> tuple[str, int]:
        return self._local

    # sending

    def _send(self, data: bytes) -> None:
        if self.fault.vanished or self._sock is None:
            return
        with self._lock:
            try:
                if self.transport == "tcp":
                    self._sock.sendall(data)
                else:
                    self._sock.sendto(data, self.server)
            except OSError as exc:
                log.info("sim device %s: send failed: %s", self.device_id, exc)

    def _build(self, start: str, headers: list[tuple[str, str]], body: bytes = b"") -> bytes:
        lines = [start, *(f"{k}: {v}" for k, v in headers), f"Content-Length: {len(body)}", "", ""]
        return "\r\n".join(lines).encode() + body

    def _request(self, method: str, extra: list[tuple[str, str]], body: bytes = b"", call_id: str | None = None,
                 wait: float = 5.0) -> Msg | None:
        with self._lock:
            self._cseq += 1
            cseq = self._cseq
        call_id = call_id or secrets.token_hex(8)
        host, port = self.local
        branch = "z9hG4bK" + secrets.token_hex(6)
        headers = [("Via", f"SIP/2.0/{self.transport.upper()} {host}:{port};rport;branch={branch}"),
                   ("From", f"<sip:{self.device_id}@{self.domain}>;tag={self._tag}"),
                   ("To", f"<sip:{self.device_id if method == 'REGISTER' else self.platform_id}@{self.domain}>"),
                   ("Call-ID", call_id), ("CSeq", f"{cseq} {method}"), ("Max-Forwards", "70"), *extra]
        uri = f"sip:{self.platform_id}@{self.domain}"
        slot: tuple[threading.Event, list[Msg]] = (threading.Event(), [])
        self._responses[f"{call_id} {cseq}"] = slot
        self._send(self._build(f"{method} {uri} SIP/2.0", headers, body))
        slot[0].wait(wait)
        self._responses.pop(f"{call_id} {cseq}", None)
        return slot[1][0] if slot[1] else None

    def register(self, expires: int = 3600, password: str | None = None) -> int:
        host, port = self.local
        contact = [("Contact", f"<sip:{self.device_id}@{host}:{port}>"), ("Expires", str(expires))]
        answer = self._request("REGISTER", contact, call_id=self._call_id)
        if answer is not None and answer.start.split()[1] == "401":
            challenge = dict(re.findall(r'(\w+)="?([^",]+)"?', answer.h("www-authenticate")[6:]))
            uri = f"sip:{self.platform_id}@{self.domain}"
            ha1 = _md5(f"{self.device_id}:{challenge['realm']}:{password or self.password}")
            ha2 = _md5(f"REGISTER:{uri}")
            cnonce, nc = secrets.token_hex(4), "00000001"
            if challenge.get("qop") == "auth":
                response = _md5(f"{ha1}:{challenge['nonce']}:{nc}:{cnonce}:auth:{ha2}")
                qop = f', qop=auth, nc={nc}, cnonce="{cnonce}"'
            else:
                response, qop = _md5(f"{ha1}:{challenge['nonce']}:{ha2}"), ""
            auth = (f'Digest username="{self.device_id}", realm="{challenge["realm"]}", nonce="{challenge["nonce"]}", '
                    f'uri="{uri}", response="{response}", algorithm=MD5{qop}')
            answer = self._request("REGISTER", [*contact, ("Authorization", auth)], call_id=self._call_id)
        self.last_status = int(answer.start.split()[1]) if answer is not None else 0
        if self.last_status == 200 and expires:
            self.registered.set()
        elif expires == 0:
            self.registered.clear()
        return self.last_status

    def _manscdp(self, body: str) -> None:
        data = ('<?xml version="1.0" encoding="GB2312"?>\r\n' + body).encode("gb18030")
        self._request("MESSAGE", [("Content-Type", "Application/MANSCDP+xml")], data, wait=2.0)

    def keepalive(self) -> None:
        self._manscdp(f"<Notify>\r\n<CmdType>Keepalive</CmdType>\r\n<SN>{self._cseq}</SN>\r\n"
                      f"<DeviceID>{self.device_id}</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n")

    def _keepalive_loop(self) -> None:
        while not self._stop.wait(self.keepalive_interval):
            if self.registered.is_set() and not self.fault.drop_keepalives and not self.fault.vanished:
                self.keepalive()

    # receiving

    def _receive_loop(self) -> None:
        buffer = b""
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if self.transport == "tcp":
                if not data:
                    return
                buffer += data
                messages = []
                while b"\r\n\r\n" in buffer:
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    match = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
                    length = int(match.group(1)) if match else 0
                    if len(rest) < length:
                        break
                    messages.append(head + b"\r\n\r\n" + rest[:length])
                    buffer = rest[length:]
            else:
                messages = [data]
            for raw in messages:
                if self.fault.vanished:
                    continue
                try:
                    self._handle(_parse(raw))
                except Exception:
                    log.exception("sim device %s: handling a message failed", self.device_id)

    def _handle(self, msg: Msg) -> None:
        if msg.start.startswith("SIP/2.0"):
            if int(msg.start.split()[1]) < 200:
                return
            key = f"{msg.h('call-id')} {msg.h('cseq').split()[0]}"
            slot = self._responses.get(key)
            if slot is not None:
                slot[1].append(msg)
                slot[0].set()
            return
        method = msg.start.split()[0]
        if method == "MESSAGE":
            self._reply(msg, 200)
            body = msg.body.decode("gb18030", "replace")
            cmd = re.search(r"<CmdType>(\w+)</CmdType>", body)
            sn = re.search(r"<SN>(\d+)</SN>", body)
            if cmd and sn:
                threading.Thread(target=self._answer_query, args=(cmd.group(1), sn.group(1)), daemon=True).start()
        elif method == "INVITE":
            self._on_invite(msg)
        elif method == "ACK":
            stream = self.streams.get(msg.h("call-id"))
            if stream is not None:
                stream.start()
        elif method == "BYE":
            self._reply(msg, 200)
            stream = self.streams.pop(msg.h("call-id"), None)
            if stream is not None:
                stream.stop()
        else:
            self._reply(msg, 200)

    def _reply(self, msg: Msg, code: int, body: bytes = b"", extra: list[tuple[str, str]] | None = None) -> None:
        reasons = {200: "OK", 100: "Trying", 486: "Busy Here", 488: "Not Acceptable Here", 403: "Forbidden"}
        to = msg.h("to") if "tag=" in msg.h("to") else f"{msg.h('to')};tag={secrets.token_hex(4)}"
        headers = [(k, v) for k, v in msg.raw_headers if k.lower() == "via"]
        headers += [("From", msg.h("from")), ("To", to), ("Call-ID", msg.h("call-id")), ("CSeq", msg.h("cseq")),
                    *(extra or [])]
        self._send(self._build(f"SIP/2.0 {code} {reasons.get(code, 'Error')}", headers, body))

    def _answer_query(self, cmd: str, sn: str) -> None:
        if cmd == "Catalog":
            per = -(-len(self.channel_ids) // self.split)
            for start in range(0, len(self.channel_ids), per):
                part = self.channel_ids[start:start + per]
                items = "".join(
                    f"<Item>\r\n<DeviceID>{cid}</DeviceID>\r\n<Name>模拟通道{n + start + 1}</Name>\r\n"
                    f"<Manufacturer>jifang</Manufacturer>\r\n<Model>sim</Model>\r\n<ParentID>{self.device_id}"
                    f"</ParentID>\r\n<Status>ON</Status>\r\n<Info>\r\n<PTZType>3</PTZType>\r\n</Info>\r\n</Item>\r\n"
                    for n, cid in enumerate(part))
                self._manscdp(f"<Response>\r\n<CmdType>Catalog</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>"
                              f"{self.device_id}</DeviceID>\r\n<SumNum>{len(self.channel_ids)}</SumNum>\r\n"
                              f'<DeviceList Num="{len(part)}">\r\n{items}</DeviceList>\r\n</Response>\r\n')
        elif cmd == "DeviceInfo":
            self._manscdp(f"<Response>\r\n<CmdType>DeviceInfo</CmdType>\r\n<SN>{sn}</SN>\r\n<DeviceID>"
                          f"{self.device_id}</DeviceID>\r\n<Result>OK</Result>\r\n<DeviceName>模拟设备</DeviceName>\r\n"
                          f"<Manufacturer>jifang</Manufacturer>\r\n<Model>sim-nvr</Model>\r\n<Firmware>1.0</Firmware>"
                          f"\r\n<Channel>{len(self.channel_ids)}</Channel>\r\n</Response>\r\n")

    def _on_invite(self, msg: Msg) -> None:
        self.invites += 1
        if self.fault.refuse_invite:
            self._reply(msg, self.fault.refuse_invite)
            return
        sdp = msg.body.decode("utf-8", "replace")
        host = re.search(r"^c=IN IP4 (\S+)", sdp, re.MULTILINE)
        media = re.search(r"^m=video (\d+) (\S+)", sdp, re.MULTILINE)
        ssrc = re.search(r"^y=(\d+)", sdp, re.MULTILINE)
        if not (host and media and ssrc):
            self._reply(msg, 488)
            return
        tcp = media.group(2).upper().startswith("TCP")
        answer_ssrc = self.fault.answer_ssrc or ssrc.group(1)
        send_ssrc = self.fault.send_ssrc if self.fault.send_ssrc is not None else int(answer_ssrc)
        local_host, _ = self.local
        lines = ["v=0", f"o={self.device_id} 0 0 IN IP4 {local_host}", "s=Play", f"c=IN IP4 {local_host}", "t=0 0",
                 f"m=video 15060 {'TCP/RTP/AVP' if tcp else 'RTP/AVP'} 96", "a=sendonly", "a=rtpmap:96 PS/90000"]
        if tcp:
            lines.append("a=setup:active")
        lines.append(f"y={answer_ssrc}")
        channel = re.search(r"sip:(\d+)@", msg.start)
        self.streams[msg.h("call-id")] = _Stream(self, channel.group(1) if channel else "", host.group(1),
                                                 int(media.group(1)), tcp, send_ssrc)
        self._reply(msg, 200, ("\r\n".join(lines) + "\r\n").encode(), [("Content-Type", "APPLICATION/SDP"),
                    ("Contact", f"<sip:{self.device_id}@{local_host}:{self.local[1]}>")])

    def ps_command(self) -> list[str]:
        if self.video is not None:
            source = ["-re", "-stream_loop", "-1", "-i", str(self.video)]
            encode = ["-c:v", "copy", "-bsf:v", "hevc_mp4toannexb" if self.codec == "h265" else "h264_mp4toannexb"]
        else:
            source = ["-re", "-f", "lavfi", "-i", f"testsrc=size={self.width}x{self.height}:rate={self.fps}"]
            gop = str(self.fps * 2)
            if self.codec == "h265":
                encode = ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:bframes=0",
                          "-pix_fmt", "yuv420p", "-g", gop, "-b:v", f"{self.bitrate_kbps}k"]
            else:
                encode = ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                          "-g", gop, "-b:v", f"{self.bitrate_kbps}k"]
        return [self.ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", *source, "-an", *encode,
                "-muxdelay", "0.1", "-flush_packets", "1", "-f", "mpeg", "pipe:1"]


class _Stream:
    """One INVITE's media: ffmpeg's PS cut into RTP packets, sent to the platform until BYE."""

    def __init__(self, device: SimGbDevice, channel: str, host: str, port: int, tcp: bool, ssrc: int) -> None:
        self.device, self.channel, self.host, self.port, self.tcp, self.ssrc = device, channel, host, port, tcp, ssrc
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen | None = None
        self.sent = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True, name=f"simgb-rtp-{self.channel}")
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._process is not None:
            stop_process(self._process, grace=2)
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        try:
            if self.tcp:
                sock = socket.create_connection((self.host, self.port), timeout=5)
            else:
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        except OSError as exc:
            log.warning("sim device: cannot reach the platform's RTP port %s:%d: %s", self.host, self.port, exc)
            return
        self._process = subprocess.Popen(self.device.ps_command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
        assert self._process.stdout is not None
        seq = random.randrange(0x10000)
        held: bytes | None = None  # a packet kept back to be sent after the next one (reordering)
        fault = self.device.fault
        # loss is evenly spaced, not random: a short test run still loses its share (0.5 %: every 200th packet)
        drop_every = max(1, round(1 / fault.udp_loss)) if fault.udp_loss else 0
        counted = 0
        with sock:
            while not self._stop.is_set():
                chunk = self._process.stdout.read1(RTP_PAYLOAD_BYTES)  # type: ignore[attr-defined]
                if not chunk:
                    break
                if fault.vanished:
                    continue
                timestamp = int(time.monotonic() * 90000) & 0xFFFFFFFF
                packet = struct.pack("!BBHII", 0x80, 96, seq, timestamp, self.ssrc) + chunk
                seq = (seq + 1) & 0xFFFF
                try:
                    if self.tcp:
                        sock.sendall(struct.pack("!H", len(packet)) + packet)
                    else:
                        counted += 1
                        if drop_every and counted % drop_every == 0:
                            continue
                        if held is None and fault.udp_reorder and random.random() < fault.udp_reorder:
                            held = packet
                            continue
                        sock.sendto(packet, (self.host, self.port))
                        if held is not None:
                            sock.sendto(held, (self.host, self.port))
                            held = None
                    self.sent += 1
                except OSError:
                    break
        stop_process(self._process, grace=2)
