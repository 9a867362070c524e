"""Reads the boxes of a recorded fragmented MP4 in-process: the video track's codec, size and duration.

Validating every segment with ffprobe cost a process per segment (about 85 ms of CPU, most of it loading a
binary that links 200+ libraries) and, since all cameras cut on the same grid, many processes at once. The
recorder writes one layout only (``-c copy`` into ``movflags=+frag_keyframe+empty_moov+default_base_moof``):
ftyp, a moov with the track headers and no samples, then moof/mdat pairs. Reading that takes a few small
reads per fragment and never touches the media data.

The reader judges only what it fully understands. A file it cannot judge (truncated by a kill, another
layout, a box it cannot parse) gives :class:`Unjudged` and the caller asks ffprobe; a well-formed file with
no video track or no sample gives ``None`` (nothing to keep).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from jifang.recorder.ffmpeg import ProbeResult, probe_segment

log = logging.getLogger("jifang.recorder")

# sample-entry four-character codes as ffprobe names their codecs
CODECS = {
    b"avc1": "h264", b"avc3": "h264", b"hvc1": "hevc", b"hev1": "hevc", b"mp4v": "mpeg4", b"av01": "av1",
    b"vp09": "vp9", b"mjpa": "mjpeg", b"mjpg": "mjpeg", b"jpeg": "mjpeg",
}
CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf", b"edts"}
MAX_HEADER_BOX = 16 * 1024 * 1024  # a moov or moof larger than this is not one the recorder wrote


@dataclass(frozen=True)
class Mp4Video:
    duration: float
    codec: str
    width: int
    height: int


class Unjudged(Exception):
    """The reader cannot tell whether the file is good; the caller falls back to ffprobe."""


@dataclass
class _Track:
    track_id: int = 0
    handler: bytes = b""
    timescale: int = 0
    codec: str = ""
    width: int = 0
    height: int = 0
    default_duration: int = 0  # from trex
    media_time: int = 0  # edit list: where presentation starts, in track units


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of each box in ``data[start:end]``; Unjudged when sizes disagree."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        if end - pos < 8:
            raise Unjudged("box header cut short")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise Unjudged("large box header cut short")
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise Unjudged(f"box {kind!r} overruns its parent")
        yield kind, pos + header, pos + size
        pos += size


def _full_box(data: bytes, pos: int) -> tuple[int, int]:
    version_flags = struct.unpack_from(">I", data, pos)[0]
    return version_flags >> 24, version_flags & 0xFFFFFF


def _read_moov(data: bytes) -> dict[int, _Track]:
    tracks: dict[int, _Track] = {}
    defaults: dict[int, int] = {}
    for kind, start, end in _boxes(data):
        if kind == b"trak":
            track = _read_trak(data, start, end)
            tracks[track.track_id] = track
        elif kind == b"mvex":
            for sub, s_start, _s_end in _boxes(data, start, end):
                if sub == b"trex":
                    track_id, _desc, duration = struct.unpack_from(">III", data, s_start + 4)
                    defaults[track_id] = duration
    for track_id, duration in defaults.items():
        if track_id in tracks:
            tracks[track_id].default_duration = duration
    return tracks


def _read_trak(data: bytes, start: int, end: int) -> _Track:
    track = _Track()

    def walk(w_start: int, w_end: int) -> None:
        for kind, b_start, b_end in _boxes(data, w_start, w_end):
            if kind in CONTAINERS:
                walk(b_start, b_end)
            elif kind == b"tkhd":
                version, _flags = _full_box(data, b_start)
                track.track_id = struct.unpack_from(">I", data, b_start + (20 if version == 1 else 12))[0]
            elif kind == b"mdhd":
                version, _flags = _full_box(data, b_start)
                track.timescale = struct.unpack_from(">I", data, b_start + (20 if version == 1 else 12))[0]
            elif kind == b"hdlr":
                track.handler = data[b_start + 8:b_start + 12]
            elif kind == b"elst":
                version, _flags = _full_box(data, b_start)
                count = struct.unpack_from(">I", data, b_start + 4)[0]
                if count:
                    # first entry: (segment duration, media time); an empty edit (-1) shifts nothing we read
                    fmt, offset = (">Qq", b_start + 8) if version == 1 else (">Ii", b_start + 8)
                    media_time = struct.unpack_from(fmt, data, offset)[1]
                    track.media_time = max(0, media_time)
            elif kind == b"stsd":
                entries = list(_boxes(data, b_start + 8, b_end))
                if entries:
                    code, e_start, _e_end = entries[0]
                    track.codec = CODECS.get(code, code.decode("latin-1").strip())
                    # visual sample entry: 6 reserved, 2 data-reference index, 16 pre-defined, then width, height
                    track.width, track.height = struct.unpack_from(">HH", data, e_start + 24)

    walk(start, end)
    return track


def _fragment_span(data: bytes, tracks: dict[int, _Track], video_id: int) -> tuple[int, int, int] | None:
    """(decode time of the first sample, total duration, sample count) of the video track in one moof."""
    for kind, start, end in _boxes(data):
        if kind != b"traf":
            continue
        track_id = 0
        default_duration = 0
        base_time: int | None = None
        duration = samples = 0
        for sub, s_start, _s_end in _boxes(data, start, end):
            if sub == b"tfhd":
                _version, flags = _full_box(data, s_start)
                track_id = struct.unpack_from(">I", data, s_start + 4)[0]
                offset = s_start + 8
                if flags & 0x01:
                    offset += 8  # base data offset
                if flags & 0x02:
                    offset += 4  # sample description index
                default_duration = (struct.unpack_from(">I", data, offset)[0] if flags & 0x08
                                    else tracks[track_id].default_duration if track_id in tracks else 0)
            elif sub == b"tfdt":
                version, _flags = _full_box(data, s_start)
                base_time = struct.unpack_from(">Q" if version == 1 else ">I", data, s_start + 4)[0]
            elif sub == b"trun":
                _version, flags = _full_box(data, s_start)
                count = struct.unpack_from(">I", data, s_start + 4)[0]
                offset = s_start + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
                per_sample = 4 * bin(flags & 0xF00).count("1")
                if flags & 0x100:
                    for index in range(count):
                        duration += struct.unpack_from(">I", data, offset + index * per_sample)[0]
                else:
                    duration += default_duration * count
                samples += count
        if track_id == video_id:
            if base_time is None:
                raise Unjudged("fragment without a decode time (tfdt)")
            return base_time, duration, samples
    return None


def _read_box(handle: BinaryIO, size: int, kind: bytes) -> bytes:
    if size > MAX_HEADER_BOX:
        raise Unjudged(f"{kind!r} box of {size} bytes")
    data = handle.read(size)
    if len(data) != size:
        raise Unjudged(f"{kind!r} box cut short")
    return data


def read_video(path: Path) -> Mp4Video | None:
    """The video track of a fragmented MP4: None when it holds no video sample, Unjudged when unsure."""
    try:
        with path.open("rb") as handle:
            file_size = handle.seek(0, 2)
            handle.seek(0)
            tracks: dict[int, _Track] | None = None
            first: int | None = None
            last_end = 0
            samples = 0
            pos = 0
            seen_ftyp = False
            while pos < file_size:
                header = handle.read(8)
                if len(header) < 8:
                    raise Unjudged("box header cut short")
                size, kind = struct.unpack(">I4s", header)
                header_len = 8
                if size == 1:
                    size = struct.unpack(">Q", handle.read(8))[0]
                    header_len = 16
                elif size == 0:
                    size = file_size - pos
                if size < header_len or pos + size > file_size:
                    raise Unjudged(f"{kind!r} box runs past the end of the file (truncated)")
                if not seen_ftyp and kind != b"ftyp":
                    raise Unjudged("no ftyp box first: not an MP4 the recorder wrote")
                seen_ftyp = True
                if kind == b"moov":
                    tracks = _read_moov(_read_box(handle, size - header_len, kind))
                elif kind == b"moof":
                    if tracks is None:
                        raise Unjudged("fragment before the movie header")
                    video = _video_track(tracks)
                    if video is None:
                        return None
                    span = _fragment_span(_read_box(handle, size - header_len, kind), tracks, video.track_id)
                    if span is not None:
                        base, duration, count = span
                        first = base if first is None else min(first, base)
                        last_end = max(last_end, base + duration)
                        samples += count
                pos += size
                handle.seek(pos)
    except (struct.error, KeyError, IndexError) as exc:
        raise Unjudged(f"unparsable box ({type(exc).__name__})") from None
    if tracks is None:
        raise Unjudged("no movie header (moov)")
    video = _video_track(tracks)
    if video is None or samples == 0 or first is None:
        return None
    if not video.timescale or not video.codec:
        raise Unjudged("video track without timescale or sample description")
    # presentation starts at the edit list's media time (B-frame delay), as ffprobe counts it
    start = max(first, video.media_time)
    return Mp4Video((last_end - start) / video.timescale, video.codec, video.width, video.height)


def _video_track(tracks: dict[int, _Track]) -> _Track | None:
    return next((track for track in tracks.values() if track.handler == b"vide"), None)


def validate_segment(ffprobe: str, path: Path) -> ProbeResult | None:
    """Duration and codec of a recorded segment, read in-process; ffprobe only for files the reader cannot
    judge (a segment cut short by a kill, a layout the recorder does not write)."""
    try:
        video = read_video(path)
    except Unjudged as exc:
        log.debug("%s: %s; asking ffprobe", path.name, exc)
        return probe_segment(ffprobe, path)
    except OSError:
        return None
    if video is None:
        return None
    return ProbeResult(video.duration, video.codec, video.width, video.height)
