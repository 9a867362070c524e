"""Recovery of the spool at start: one pass finds what is pending and what is orphaned without reading a
manifest; the uploader reads each manifest when it takes the entry, and an unreadable one is handed to the
orphan-video path (rebuilt or quarantined) while the queue moves on."""

from __future__ import annotations

import hashlib
import subprocess
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from jifang.edge.agent import EdgeAgent
from jifang.recorder import RecorderMetrics, Spool, Uploader
from jifang.recorder.spool import SpoolEntry, stamp_time

from jifang.config import Settings
from jifang.db import Catalog
from jifang.domain import Segment, stamp_video_key, utc_stamp, video_key
from jifang.tiers import MediaKind, Tier, retain_until

from .test_recorder_units import CAMERA, T0, FlakyStore, make_segment, wait_until

OTHER = "33100200001320000002"
GRID = "331002001001001"


def make_catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    return catalog


def admit_all(spool: Spool, tmp_path: Path, starts: list[tuple[str, int]]) -> dict[str, Path]:
    """Admit a segment per (camera, seconds after T0); returns each one's video by key."""
    videos = {}
    for camera, seconds in starts:
        segment, path = make_segment(tmp_path, T0 + timedelta(seconds=seconds), camera)
        videos[segment.key] = spool.admit(segment, path).video
    return videos


def test_one_scan_finds_pending_and_orphans_oldest_first_without_reading_a_manifest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spool = Spool(tmp_path / "spool")
    videos = admit_all(spool, tmp_path, [(CAMERA, 30), (OTHER, 10), (CAMERA, 0), (OTHER, 40), (CAMERA, 20),
                                         (OTHER, 50), (CAMERA, 60)])
    lost = videos.pop(video_key(OTHER, T0 + timedelta(seconds=50)))
    lost.unlink()  # its manifest is an orphan
    bare = videos.pop(video_key(CAMERA, T0 + timedelta(seconds=60)))
    bare.with_suffix(".json").unlink()  # its video is an orphan
    folder = spool.segments_dir / CAMERA
    (folder / ".tmp-abc").write_text("{")  # a manifest a crash left half-written
    (folder / "holiday.mp4").write_bytes(b"x")  # a pair whose name is no capture time
    (folder / "holiday.json").write_text("{}")

    def no_reads(*_args: object) -> None:
        raise AssertionError("the scan must not read a manifest")

    monkeypatch.setattr(Spool, "read_manifest", no_reads)
    assert (folder / ".tmp-abc").exists() and spool.scan().pending, "a plain scan leaves temporary files alone"
    found = spool.scan(remove_temporary=True)
    assert not (folder / ".tmp-abc").exists()
    assert [entry.key for entry in found.pending] == [  # oldest capture first, across cameras
        video_key(camera, T0 + timedelta(seconds=s)) for camera, s in
        [(CAMERA, 0), (OTHER, 10), (CAMERA, 20), (CAMERA, 30), (OTHER, 40)]]
    assert all(entry.video == videos[entry.key] and entry.manifest == entry.video.with_suffix(".json")
               for entry in found.pending)
    assert found.orphan_manifests == [lost.with_suffix(".json")]
    assert found.orphan_videos == [bare, folder / "holiday.mp4"]


def test_a_spool_name_is_its_capture_start_and_gives_its_key() -> None:
    start = T0 + timedelta(milliseconds=218)
    assert stamp_time(utc_stamp(start)) == start
    for name in ("holiday", "20261127T080000.2185Z", "20261127T080000.218", "2026-11-27T08:00:00.218Z",
                 "20261327T080000.218Z"):
        assert stamp_time(name) is None, name
    shanghai = timezone(timedelta(hours=8))
    for moment in (start, datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
                   datetime(2027, 1, 1, 7, 30, tzinfo=shanghai)):  # 2026-12-31 23:30 UTC: the key's hour is UTC's
        assert stamp_video_key(CAMERA, utc_stamp(moment)) == video_key(CAMERA, moment)
    assert video_key(CAMERA, datetime(2027, 1, 1, 7, 30, tzinfo=shanghai)).startswith(
        f"video/{CAMERA}/2026/12/31/23/")


def test_the_lag_of_an_unread_entry_counts_from_its_capture_start(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    admit_all(spool, tmp_path, [(CAMERA, 0), (CAMERA, 10)])
    metrics = RecorderMetrics()
    uploader = Uploader(FlakyStore(tmp_path / "store"), make_catalog(tmp_path), spool, metrics,
                        lambda: T0 + timedelta(minutes=5), spool_limit=10**9)
    uploader.enqueue_many(spool.scan().pending)
    assert uploader.backlog() == 2
    assert metrics.upload_lag.labels(CAMERA)._value.get() == 300  # the true lag is 290: never understated


def start_uploader(tmp_path: Path, spool: Spool, hook: object = None) -> tuple[Uploader, FlakyStore, Catalog]:
    store = FlakyStore(tmp_path / "store")
    store.ensure_ready()
    catalog = make_catalog(tmp_path)
    uploader = Uploader(store, catalog, spool, RecorderMetrics(), lambda: T0, spool_limit=10**9, backoff_cap=0.2,
                        workers=2, on_unreadable_manifest=hook)  # type: ignore[arg-type]
    return uploader, store, catalog


def test_an_unreadable_manifest_found_by_the_worker_is_rebuilt_and_uploaded_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    segments = [make_segment(tmp_path, T0 + timedelta(seconds=10 * i)) for i in range(4)]
    items = [spool.admit(segment, path) for segment, path in segments]
    torn = items[1]
    torn.manifest.write_text(torn.manifest.read_text()[:40])  # a torn write, found only when it is read
    handed: list[Path] = []

    def rebuild(video: Path) -> None:  # what the agent does: a new manifest, queued again
        handed.append(video)
        video.with_suffix(".json").unlink()
        uploader.enqueue(spool.admit(segments[1][0], video))

    uploader, store, catalog = start_uploader(tmp_path, spool, rebuild)
    for entry in spool.scan().pending:
        assert isinstance(entry, SpoolEntry)
        uploader.enqueue(entry)
    uploader.start()
    assert wait_until(lambda: uploader.backlog() == 0)
    assert uploader.stop(drain_seconds=1) == 0
    assert handed == [torn.video]
    assert store.written == [item.segment.key for item in items], "capture order, the rebuilt one in its place"
    assert spool.scan().pending == [] and spool.orphan_videos() == []
    assert all(row.uploaded_at is not None for row in catalog.segments(CAMERA))


def test_a_failing_orphan_path_never_stops_the_worker(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    items = [spool.admit(*make_segment(tmp_path, T0 + timedelta(seconds=10 * i))) for i in range(3)]
    items[0].manifest.write_text("[]")

    def broken(_video: Path) -> None:
        raise RuntimeError("rebuilding failed")

    uploader, store, _catalog = start_uploader(tmp_path, spool, broken)
    for entry in spool.scan().pending:
        uploader.enqueue(entry)
    uploader.start()
    assert wait_until(lambda: uploader.backlog() == 0)
    assert uploader.stop(drain_seconds=1) == 0
    assert store.written == [item.segment.key for item in items[1:]]
    assert items[0].video.exists(), "nothing is lost: it stays in the spool for the next start"
    assert spool.orphan_videos() == [items[0].video]


@pytest.fixture(scope="module")
def fmp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A 2 s fragmented MP4 segment as the recorder's ffmpeg writes it."""
    path = tmp_path_factory.mktemp("fmp4") / "seg.mp4"
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=160x120:rate=25", "-t", "2", "-c:v", "libx264", "-g", "25",
                    "-movflags", "+frag_keyframe+empty_moov+default_base_moof", str(path)], check=True, timeout=120)
    return path.read_bytes()


def agent_settings(tmp_path: Path) -> Settings:
    return Settings.model_validate({
        "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'c.db'}"},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "recorder": {"spool_dir": str(tmp_path / "spool")},
        "grids": [{"code": GRID, "name": "g"}],
        "cameras": [{"id": CAMERA, "name": "c", "grid": GRID, "tier": "important",
                     "rtsp_url": "rtsp://127.0.0.1:1/x"}],
    })


def video_segment(tmp_path: Path, start: datetime, content: bytes) -> tuple[Segment, Path]:
    path = tmp_path / f"rec-{start.timestamp()}.mp4"
    path.write_bytes(content)
    end = start + timedelta(seconds=2)
    return Segment(CAMERA, video_key(CAMERA, start), start, end, len(content), hashlib.sha256(content).hexdigest(),
                   Tier.IMPORTANT, GRID, retain_until(end, Tier.IMPORTANT, MediaKind.VIDEO)), path


def test_the_agent_rebuilds_a_manifest_found_unreadable_after_start_and_uploads_everything(
        tmp_path: Path, fmp4: bytes) -> None:
    spool = Spool(tmp_path / "spool")
    items = [spool.admit(*video_segment(tmp_path, T0 + timedelta(seconds=2 * i), fmp4)) for i in range(3)]
    items[2].manifest.write_text('{"camera_id": "x", "key"')  # torn: only the worker will find it
    agent = EdgeAgent(agent_settings(tmp_path), preflight=False)
    agent.open()  # recovery queues all three by name: no manifest is read
    assert agent.uploader is not None and agent.store is not None
    assert agent.uploader.backlog() == 3
    assert agent.metrics.spool_orphans.labels("video")._value.get() == 0
    agent.uploader.start()
    try:
        assert wait_until(lambda: agent.uploader.backlog() == 0, 60)
    finally:
        agent.uploader.stop(drain_seconds=1)
    assert agent.metrics.spool_orphans.labels("video")._value.get() == 1
    stored = {obj.key for obj in agent.store.list(MediaKind.VIDEO, f"video/{CAMERA}/")}
    assert stored == {item.segment.key for item in items}, "the rebuilt segment is uploaded as well"
    assert [p.name for p in (spool.quarantine_dir / CAMERA).iterdir()] == [
        f"{CAMERA}-{items[2].manifest.name}"], "the unreadable manifest is kept for inspection"
    assert spool.scan().pending == []
