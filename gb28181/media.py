"""One channel's live stream: INVITE with a unique SSRC, receive PS over RTP (TCP passive or UDP), check the
SSRC, put UDP back in order, and pipe the PS payload into the recorder's ffmpeg (an InputSource).

Why a run ends decides the gap row's cause: the device went offline (``device_offline``), RTP stopped for
``media_timeout`` seconds (``media_timeout``, then BYE and a re-INVITE with the recorder's back-off), or the
device refused the INVITE (``invite_refused`` with the SIP code).
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
from typing import IO

from jifang.gb28181 import rtp
from jifang.gb28181.rtp import RtpError, RtpPacket

from jifang.domain import GapCause
from jifang.errors import CameraError

log = logging.getLogger("jifang.gb28181")

# PS from a pipe: the demuxer must find the codec itself when the PSM is missing; H.265 needs a larger probe
INPUT_ARGS = ["-probesize", "5000000", "-analyzeduration", "5000000", "-fflags", "+genpts+discardcorrupt",
              "-use_wallclock_as_timestamps", "1", "-f", "mpeg", "-i", "pipe:0"]
UDP_BUFFER_BYTES = 4 << 20


class DeviceOfflineError(CameraError):
    gap_cause = GapCause.DEVICE_OFFLINE


class MediaTimeoutError(CameraError):
    gap_cause = GapCause.MEDIA_TIMEOUT


class InviteRefusedError(CameraError):
    gap_cause = GapCause.INVITE_REFUSED


def sdp_offer(platform_id: str, host: str, port: int, ssrc: str, transport: str) -> bytes:
    media = "TCP/RTP/AVP" if transport == "tcp" else "RTP/AVP"
    lines = ["v=0", f"o={platform_id} 0 0 IN IP4 {host}", "s=Play", f"c=IN IP4 {host}", "t=0 0",
             f"m=video {port} {media} 96", "a=recvonly", "a=rtpmap:96 PS/90000"]
    if transport == "tcp":
        lines += ["a=setup:passive", "a=connection:new"]
    lines.append(f"y={ssrc}")
    return ("\r\n".join(lines) + "\r\n").encode()


def answered_ssrc(sdp: bytes) -> str | None:
    match = re.search(rb"^y=(\d{1,10})\s*$", sdp, re.MULTILINE)
    return match.group(1).decode() if match else None


class GbMediaSource:
    """The recorder's input for one channel (see jifang.recorder.source.InputSource)."""

    def __init__(self, platform, device_id: str, channel_id: str) -> None:  # type: ignore[no-untyped-def]
        self.platform = platform
        self.device_id = device_id
        self.channel_id = channel_id
        self._config = platform.config
        self._metrics = platform.metrics
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._dialog = None
        self._socket: socket.socket | None = None
        self._sink: IO[bytes] | None = None
        self._thread: threading.Thread | None = None
        self._ended: CameraError | None = None
        self._failed_epoch = -1
        self._ssrc_warned = False

    # InputSource

    def input_args(self) -> list[str]:
        return list(INPUT_ARGS)

    def open(self, sink: IO[bytes]) -> None:
        self._stop.clear()
        self._ended = None
        self._ssrc_warned = False
        server = self.platform.sip
        if not server.is_online(self.device_id):
            self._failed_epoch = server.epoch(self.device_id)
            raise DeviceOfflineError(f"camera {self.channel_id}: GB/T 28181 device {self.device_id} is offline")
        transport = self._config.media_transport
        sock, port = self.platform.ports.open(transport)
        ssrc = self.platform.ssrcs.allocate()
        sdp = sdp_offer(self._config.platform_id, self._config.media_host, port, ssrc, transport)
        status, dialog = server.invite(self.device_id, self.channel_id, ssrc, sdp)
        if dialog is None:
            sock.close()
            self.platform.ssrcs.release(ssrc)
            self._failed_epoch = server.epoch(self.device_id)
            if not server.is_online(self.device_id):
                raise DeviceOfflineError(f"camera {self.channel_id}: GB/T 28181 device {self.device_id} is offline")
            what = f"SIP {status}" if status else f"no answer within {self._config.invite_timeout:g} s"
            raise InviteRefusedError(f"camera {self.channel_id}: device {self.device_id} refused the INVITE ({what})")
        expected = int(ssrc)
        theirs = answered_ssrc(dialog.answer.body if dialog.answer else b"")
        if theirs is not None and int(theirs) != expected:
            # some devices answer with an SSRC of their own; their RTP carries it, so it is what we check
            self._metrics.bad_input.labels("ssrc_answer_mismatch").inc()
            log.warning("camera %s: device answered SSRC %s to our %s; accepting the device's", self.channel_id,
                        theirs, ssrc)
            expected = int(theirs)
        with self._lock:
            self._dialog, self._socket, self._sink = dialog, sock, sink
        self._ssrc = ssrc
        self._thread = threading.Thread(target=self._pump, args=(sock, sink, transport, expected),
                                        name=f"gb-media-{self.channel_id}", daemon=True)
        self._thread.start()
        log.info("camera %s: INVITE accepted by device %s; RTP over %s on port %d, SSRC %s", self.channel_id,
                 self.device_id, transport.upper(), port, ssrc)

    def close(self) -> None:
        self._end(None)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def failure(self, stderr_lines: list[str]) -> CameraError:
        if self._ended is not None:
            return self._ended
        last = next((line.strip() for line in reversed(stderr_lines) if line.strip()), "stream ended")
        return CameraError(f"camera {self.channel_id}: GB/T 28181 stream stopped: {last}")

    def ready(self) -> bool:
        """Re-invite at once when the device came back since the last failure."""
        server = self.platform.sip
        return server.is_online(self.device_id) and server.epoch(self.device_id) != self._failed_epoch \
            and self._failed_epoch != -1

    # events from the SIP server

    def device_offline(self) -> None:
        self._end(DeviceOfflineError(f"camera {self.channel_id}: GB/T 28181 device {self.device_id} went offline"))

    def device_bye(self, call_id: str) -> None:
        dialog = self._dialog
        if dialog is not None and dialog.call_id == call_id:
            self._dialog = None  # the device ended it: no BYE back
            self._end(MediaTimeoutError(f"camera {self.channel_id}: the device ended the stream (BYE)"))

    # internals

    def _end(self, reason: CameraError | None) -> None:
        with self._lock:
            if reason is not None and self._ended is None:
                self._ended = reason
                self._failed_epoch = self.platform.sip.epoch(self.device_id)
            dialog, sock, sink = self._dialog, self._socket, self._sink
            self._dialog = self._socket = self._sink = None
        self._stop.set()
        if dialog is not None:
            try:
                self.platform.sip.bye(dialog)
            except Exception:
                log.exception("camera %s: BYE failed", self.channel_id)
        if sock is not None:
            sock.close()
        if sink is not None:
            with contextlib.suppress(OSError):
                sink.close()  # ffmpeg sees the end of its input, closes the segment and exits
        ssrc = getattr(self, "_ssrc", None)
        if sock is not None and ssrc is not None:
            self.platform.ssrcs.release(ssrc)
        self._metrics.media_up.labels(self.channel_id).set(0)

    def _pump(self, sock: socket.socket, sink: IO[bytes], transport: str, ssrc: int) -> None:
        timeout = self._config.media_timeout
        try:
            if transport == "tcp":
                self._pump_tcp(sock, sink, ssrc, timeout)
            else:
                self._pump_udp(sock, sink, ssrc, timeout)
        except (BrokenPipeError, ValueError, OSError) as exc:
            if not self._stop.is_set():
                log.info("camera %s: media ended (%s)", self.channel_id, exc)
                self._end(CameraError(f"camera {self.channel_id}: recorder input closed ({exc})"))

    def _timed_out(self, timeout: float) -> None:
        log.warning("camera %s: no RTP from device %s for %.0f s; ending the stream", self.channel_id,
                    self.device_id, timeout)
        self._end(MediaTimeoutError(f"camera {self.channel_id}: no RTP for {timeout:g} s"))

    def _accept(self, packet: RtpPacket, ssrc: int) -> bool:
        if packet.ssrc != ssrc:
            self._metrics.bad_input.labels("ssrc_mismatch").inc()
            if not self._ssrc_warned:
                self._ssrc_warned = True
                log.warning("camera %s: RTP with SSRC %d, expected %d; dropped", self.channel_id, packet.ssrc, ssrc)
            return False
        return True

    def _pump_tcp(self, listener: socket.socket, sink: IO[bytes], ssrc: int, timeout: float) -> None:
        listener.settimeout(0.5)
        deadline = time.monotonic() + timeout
        conn = None
        while conn is None:
            if self._stop.is_set():
                return
            try:
                conn, _addr = listener.accept()
            except TimeoutError:
                if time.monotonic() > deadline:
                    self._timed_out(timeout)
                    return
        deframer = rtp.TcpDeframer()
        packets = self._metrics.rtp_packets.labels(self.channel_id)
        up = self._metrics.media_up.labels(self.channel_id)
        with conn:
            conn.settimeout(0.5)
            last = time.monotonic()
            expected_seq: int | None = None
            while not self._stop.is_set():
                try:
                    data = conn.recv(1 << 16)
                except TimeoutError:
                    if time.monotonic() - last > timeout:
                        self._timed_out(timeout)
                        return
                    continue
                if not data:
                    self._end(MediaTimeoutError(f"camera {self.channel_id}: the device closed the RTP connection"))
                    return
                chunks = []
                for raw in deframer.feed(data):
                    try:
                        packet = rtp.parse(raw)
                    except RtpError:
                        self._metrics.bad_input.labels("not_rtp").inc()
                        continue
                    if not self._accept(packet, ssrc):
                        continue
                    if expected_seq is not None and packet.seq != expected_seq:
                        self._metrics.rtp_lost.labels(self.channel_id).inc((packet.seq - expected_seq) & 0xFFFF)
                    expected_seq = (packet.seq + 1) & 0xFFFF
                    chunks.append(packet.payload)
                    packets.inc()
                if chunks:
                    last = time.monotonic()
                    up.set(1)
                    sink.write(b"".join(chunks))
                elif time.monotonic() - last > timeout:  # packets, but none of ours
                    self._timed_out(timeout)
                    return

    def _pump_udp(self, sock: socket.socket, sink: IO[bytes], ssrc: int, timeout: float) -> None:
        sock.settimeout(0.5)
        buffer = rtp.ReorderBuffer(self._config.jitter_packets)
        packets = self._metrics.rtp_packets.labels(self.channel_id)
        up = self._metrics.media_up.labels(self.channel_id)
        last = time.monotonic()
        counted_lost = counted_reordered = 0
        while not self._stop.is_set():
            try:
                data = sock.recv(rtp.MAX_RTP_BYTES)
            except TimeoutError:
                if time.monotonic() - last > timeout:
                    self._timed_out(timeout)
                    return
                continue
            try:
                packet = rtp.parse(data)
            except RtpError:
                self._metrics.bad_input.labels("not_rtp").inc()
                continue
            if not self._accept(packet, ssrc):
                if time.monotonic() - last > timeout:  # packets, but none of ours
                    self._timed_out(timeout)
                    return
                continue
            last = time.monotonic()
            packets.inc()
            up.set(1)
            released = buffer.push(packet)
            if released:
                sink.write(b"".join(p.payload for p in released))
            if buffer.lost != counted_lost:
                self._metrics.rtp_lost.labels(self.channel_id).inc(buffer.lost - counted_lost)
                counted_lost = buffer.lost
            if buffer.reordered != counted_reordered:
                self._metrics.rtp_reordered.labels(self.channel_id).inc(buffer.reordered - counted_reordered)
                counted_reordered = buffer.reordered


class PortPool:
    """Local RTP ports from the configured range, one per stream (several cameras on one port mix SSRCs)."""

    def __init__(self, host: str, low: int, high: int) -> None:
        self.host, self.low, self.high = host, low, high
        self._next = low
        self._lock = threading.Lock()

    def open(self, transport: str) -> tuple[socket.socket, int]:
        with self._lock:
            for _ in range(self.high - self.low + 1):
                port = self._next
                self._next = self.low if port >= self.high else port + 1
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM if transport == "tcp" else socket.SOCK_DGRAM)
                try:
                    if transport == "udp":
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_BUFFER_BYTES)
                    sock.bind((self.host, port))
                    if transport == "tcp":
                        sock.listen(1)
                    return sock, port
                except OSError:
                    sock.close()
        raise CameraError(f"no free RTP port in {self.low}-{self.high}: widen gb28181.rtp_port_min/max")


class SsrcPool:
    """10-digit SSRCs: 0 (live), 5 digits of the domain, a 4-digit sequence unique among open streams."""

    def __init__(self, domain: str) -> None:
        self.prefix = "0" + (domain[3:8] if len(domain) >= 8 else domain.rjust(5, "0")[-5:])
        self._used: set[str] = set()
        self._next = 1
        self._lock = threading.Lock()

    def allocate(self) -> str:
        with self._lock:
            for _ in range(9999):
                ssrc = f"{self.prefix}{self._next:04d}"
                self._next = self._next % 9999 + 1
                if ssrc not in self._used:
                    self._used.add(ssrc)
                    return ssrc
        raise CameraError("all 9999 live SSRCs are in use")

    def release(self, ssrc: str) -> None:
        with self._lock:
            self._used.discard(ssrc)
