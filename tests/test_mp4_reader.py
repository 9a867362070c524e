"""The in-process fMP4 reader against segments written by real ffmpeg (H.264 and H.265) and ffprobe."""

from __future__ import annotations

import struct
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
from jifang.recorder import RecorderMetrics, SegmentSink, Spool
from jifang.recorder.ffmpeg import probe_segment
from jifang.recorder.mp4 import Unjudged, read_video, validate_segment

from jifang.config import CameraConfig
from jifang.db import Catalog

ENCODERS = {"h264": ["-c:v", "libx264"], "hevc": ["-c:v", "libx265", "-x265-params", "log-level=error"]}
FRAME = 1 / 25


@pytest.fixture(scope="module", params=sorted(ENCODERS))
def segments(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[Path]]:
    """Three 2 s segments cut by ffmpeg's segment muxer exactly as the recorder asks for them."""
    codec = request.param
    folder = tmp_path_factory.mktemp(codec)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
         "-t", "6", *ENCODERS[codec], "-g", "25", "-f", "segment", "-segment_time", "2", "-reset_timestamps", "1",
         "-segment_format", "mp4",
         "-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof",
         str(folder / "seg-%03d.mp4")],
        check=True, timeout=120,
    )
    files = sorted(folder.glob("seg-*.mp4"))
    assert len(files) == 3
    return codec, files


def test_reader_agrees_with_ffprobe(segments: tuple[str, list[Path]]) -> None:
    codec, files = segments
    for path in files:
        video = read_video(path)
        probed = probe_segment("ffprobe", path)
        assert video is not None and probed is not None
        assert (video.codec, video.width, video.height) == (probed.codec, probed.width, probed.height) == (
            codec, 320, 240)
        assert video.duration == pytest.approx(probed.duration, abs=FRAME / 2)
        assert video.duration == pytest.approx(2.0, abs=4 * FRAME)


def test_truncated_segment_is_left_to_ffprobe(segments: tuple[str, list[Path]], tmp_path: Path) -> None:
    """A segment cut short (ffmpeg killed mid-fragment) is not judged in-process; ffprobe decides."""
    _codec, files = segments
    data = files[0].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(Unjudged, match="truncated"):
        read_video(cut)
    assert validate_segment("ffprobe", cut) == probe_segment("ffprobe", cut)


def test_header_without_frames_holds_no_video(segments: tuple[str, list[Path]], tmp_path: Path) -> None:
    _codec, files = segments
    data = files[0].read_bytes()
    header = tmp_path / "header.mp4"
    header.write_bytes(data[: data.index(b"moof") - 4])  # ftyp + moov: what a camera that sent nothing leaves
    assert read_video(header) is None
    assert validate_segment("/nonexistent/ffprobe", header) is None


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"not an mp4 at all, just text" * 40,
                                     struct.pack(">I4s", 4, b"ftyp") + b"\x00" * 100,
                                     struct.pack(">I4s", 16, b"ftyp") + b"isom\x00\x00\x00\x00"
                                     + struct.pack(">I4s", 24, b"moov") + struct.pack(">I4s", 99, b"trak")])
def test_garbage_is_unjudged_and_ffprobe_refuses_it(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "garbage.mp4"
    path.write_bytes(content)
    with pytest.raises(Unjudged):
        read_video(path)
    assert validate_segment("ffprobe", path) is None


def test_sink_validates_without_starting_ffprobe(segments: tuple[str, list[Path]], tmp_path: Path) -> None:
    """A complete segment is accepted with its duration even when no ffprobe exists to ask."""
    _codec, files = segments
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    queued = []
    sink = SegmentSink(Spool(tmp_path / "spool"), catalog, RecorderMetrics(), queued.append,
                       "/nonexistent/ffprobe", lambda: datetime(2026, 12, 1, tzinfo=UTC))
    camera = CameraConfig(id="33100200001320000001", name="c", grid="331002001001001", tier="important",
                          rtsp_url="rtsp://127.0.0.1:8554/x")
    recorded = tmp_path / "seg.mp4"
    recorded.write_bytes(files[1].read_bytes())
    segment = sink.accept(camera, "331002001001001", recorded, datetime(2026, 12, 1, 8, tzinfo=UTC))
    assert segment is not None
    assert segment.duration == pytest.approx(2.0, abs=FRAME)
    assert [item.segment.key for item in queued] == [segment.key]
