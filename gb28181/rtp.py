"""RTP for GB/T 28181 media: packets, RFC 4571 framing over TCP, and the reorder buffer for UDP."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from jifang.gb28181.sip import SipError

MAX_RTP_BYTES = 65535 + 2


class RtpError(SipError):
    """A datagram or frame that is not an RTP packet."""


@dataclass(frozen=True)
class RtpPacket:
    seq: int
    timestamp: int
    ssrc: int
    payload_type: int
    marker: bool
    payload: bytes


def parse(data: bytes) -> RtpPacket:
    if len(data) < 12:
        raise RtpError(f"{len(data)} bytes is shorter than an RTP header")
    first, second, seq, timestamp, ssrc = struct.unpack("!BBHII", data[:12])
    if first >> 6 != 2:
        raise RtpError(f"RTP version {first >> 6}, expected 2")
    offset = 12 + 4 * (first & 0x0F)
    if first & 0x10:  # header extension
        if len(data) < offset + 4:
            raise RtpError("truncated RTP header extension")
        offset += 4 + 4 * struct.unpack("!H", data[offset + 2:offset + 4])[0]
    end = len(data)
    if first & 0x20 and end > offset:  # padding
        end -= data[-1]
    if offset > end:
        raise RtpError("RTP header longer than the packet")
    return RtpPacket(seq, timestamp, ssrc, second & 0x7F, bool(second & 0x80), data[offset:end])


def build(seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False, payload_type: int = 96) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type, seq & 0xFFFF,
                       timestamp & 0xFFFFFFFF, ssrc & 0xFFFFFFFF) + payload


def frame(packet: bytes) -> bytes:
    """RFC 4571: a 2-byte big-endian length before each packet on the TCP connection."""
    return struct.pack("!H", len(packet)) + packet


class TcpDeframer:
    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        packets = []
        while len(self._buffer) >= 2:
            length = struct.unpack("!H", self._buffer[:2])[0]
            if len(self._buffer) < 2 + length:
                break
            packets.append(bytes(self._buffer[2:2 + length]))
            del self._buffer[:2 + length]
        return packets


def seq_after(a: int, b: int) -> bool:
    """True when sequence number ``a`` comes after ``b`` (modulo 2^16)."""
    return a != b and (a - b) & 0xFFFF < 0x8000


class ReorderBuffer:
    """Puts UDP packets back in sequence order, holding at most ``capacity`` packets.

    A missing packet is waited for until the buffer is full, then counted lost and skipped; a packet older
    than the one last released is too late to use and is dropped (counted reordered, as it was)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._held: dict[int, RtpPacket] = {}
        self._next: int | None = None
        self.lost = 0
        self.reordered = 0
        self.late = 0

    def push(self, packet: RtpPacket) -> list[RtpPacket]:
        if self._next is None:
            self._next = packet.seq
        if packet.seq != self._next and not seq_after(packet.seq, self._next):
            self.late += 1
            self.reordered += 1
            return []
        if packet.seq in self._held:
            return []  # duplicate
        if self._held and seq_after(max(self._held, key=self._distance), packet.seq):
            self.reordered += 1  # arrived after a later packet
        self._held[packet.seq] = packet
        released = self._release()
        while len(self._held) > self.capacity:
            skip_to = min(self._held, key=self._distance)
            self.lost += (skip_to - self._next) & 0xFFFF  # type: ignore[operator]
            self._next = skip_to
            released += self._release()
        return released

    def flush(self) -> list[RtpPacket]:
        packets = [self._held[seq] for seq in sorted(self._held, key=self._distance)]
        self._held.clear()
        return packets

    def _distance(self, seq: int) -> int:
        return (seq - self._next) & 0xFFFF  # type: ignore[operator]

    def _release(self) -> list[RtpPacket]:
        released = []
        while self._next in self._held:
            released.append(self._held.pop(self._next))
            self._next = (self._next + 1) & 0xFFFF
        return released
