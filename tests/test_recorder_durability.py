"""The recorder's durability pieces without a camera: spool verification and quarantine, the spool as the
write-ahead log of the catalog, gap writes that wait out a database outage, one-signal stops and failure
causes taken from evidence."""

from __future__ import annotations

import errno
import hashlib
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

from jifang.recorder import RecorderMetrics, Spool, Uploader
from jifang.recorder.camera import fault_from_exception, fault_from_stderr
from jifang.recorder.gaps import GapBook
from jifang.recorder.spool import file_identity
from sqlalchemy.exc import OperationalError

from jifang.db import Catalog
from jifang.domain import GapCause
from jifang.errors import StoreUnavailableError
from jifang.store import FilesystemStore, StoreWhenReachable
from jifang.supervision import stop_process
from jifang.tiers import MediaKind

from .test_recorder_units import CAMERA, T0, FlakyStore, make_segment, wait_until


def make_catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    return catalog


def uploader_on_disk(tmp_path: Path) -> tuple[FilesystemStore, Catalog, Spool, RecorderMetrics, Uploader]:
    """A filesystem store, a SQLite catalog, a spool and an uploader over them (not started)."""
    store = FilesystemStore(tmp_path / "store")
    store.ensure_ready()
    catalog = make_catalog(tmp_path)
    spool = Spool(tmp_path / "spool")
    metrics = RecorderMetrics()
    return store, catalog, spool, metrics, Uploader(store, catalog, spool, metrics, lambda: T0, spool_limit=10**9,
                                                    backoff_cap=0.2)


def test_a_damaged_spool_file_is_quarantined_as_spool_corrupt_and_the_queue_moves_on(tmp_path: Path) -> None:
    store, catalog, spool, metrics, uploader = uploader_on_disk(tmp_path)
    items = []
    for i in range(3):
        segment, path = make_segment(tmp_path, T0 + timedelta(seconds=10 * i))
        items.append(spool.admit(segment, path))
    damaged = items[0]
    damaged.video.write_bytes(damaged.video.read_bytes()[:100])  # a truncated file, same name
    for item in items:
        uploader.enqueue(item)
    uploader.start()
    assert wait_until(lambda: uploader.backlog() == 0)
    uploader.stop(drain_seconds=1)
    stored = {obj.key for obj in store.list(MediaKind.VIDEO, f"video/{CAMERA}/")}
    assert stored == {items[1].segment.key, items[2].segment.key}, "the damaged file must never be stored"
    assert [(g.cause, g.start_at, g.end_at) for g in catalog.gaps(CAMERA)] == [
        ("spool_corrupt", damaged.segment.capture_start, damaged.segment.capture_end)]
    assert metrics.quarantined.labels(CAMERA)._value.get() == 1
    assert sorted(p.suffix for p in (spool.quarantine_dir / CAMERA).iterdir()) == [".json", ".mp4"]
    assert spool.pending() == []
    # the other two were catalogued by the uploader from the spool alone (no one else added them)
    assert [row.key for row in catalog.segments(CAMERA) if row.uploaded_at] == [i.segment.key for i in items[1:]]


def test_a_segment_hashed_at_spooling_is_hashed_again_only_if_written_to_since(tmp_path: Path,
                                                                           monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import jifang.recorder.uploader as uploader_module

    hashed: list[Path] = []
    real_sha256_of = uploader_module.sha256_of
    monkeypatch.setattr(uploader_module, "sha256_of", lambda path: hashed.append(path) or real_sha256_of(path))
    store, catalog, spool, _metrics, uploader = uploader_on_disk(tmp_path)
    items = []
    for i in range(3):
        segment, path = make_segment(tmp_path, T0 + timedelta(seconds=10 * i))
        items.append(spool.admit(segment, path, hashed_as=file_identity(path)))  # as the recorder's sink does
    assert all(item.hashed_as is not None for item in items)
    damaged = items[1]
    content = bytearray(damaged.video.read_bytes())
    content[10] ^= 0xFF
    time.sleep(0.01)  # a later mtime, as any write after the hash has
    damaged.video.write_bytes(bytes(content))  # same size, one byte flipped
    inodes = {item.segment.key: item.video.stat().st_ino for item in items}
    for item in items:
        uploader.enqueue(item)
    uploader.start()
    assert wait_until(lambda: uploader.backlog() == 0)
    uploader.stop(drain_seconds=1)
    assert hashed == [damaged.video], "only the file written to after spooling is read again"
    assert [(g.cause, g.start_at) for g in catalog.gaps(CAMERA)] == [("spool_corrupt", damaged.segment.capture_start)]
    for item in (items[0], items[2]):
        stored = store.root / "jifang-video" / item.segment.key
        assert stored.stat().st_ino == inodes[item.segment.key]  # the spool and the store share one filesystem
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == item.segment.sha256
    assert spool.pending() == []


class DownCatalog(Catalog):
    """A catalog whose database refuses connections while ``down`` is True."""

    down = False

    def _refuse_while_down(self) -> None:
        if self.down:
            raise OperationalError("SELECT 1", {}, ConnectionRefusedError("Connection refused"))

    def session(self):  # type: ignore[no-untyped-def]
        self._refuse_while_down()
        return super().session()

    def connect(self):  # type: ignore[no-untyped-def]
        self._refuse_while_down()
        return super().connect()

    def begin(self):  # type: ignore[no-untyped-def]
        self._refuse_while_down()
        return super().begin()


def test_gap_writes_wait_out_a_database_outage_in_order(tmp_path: Path) -> None:
    catalog = DownCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    book = GapBook(catalog, CAMERA)
    catalog.down = True
    book.open(T0, GapCause.CAMERA_OFFLINE, "camera 1: unreachable (Connection refused)")
    assert book.close(T0 + timedelta(seconds=30)) is None
    assert book.pending == 2
    catalog.down = False
    book.add(T0 + timedelta(seconds=60), T0 + timedelta(seconds=70), GapCause.NOT_RECORDED, "x")
    assert book.pending == 0
    assert [(g.start_at, g.end_at, g.cause) for g in catalog.gaps(CAMERA)] == [
        (T0, T0 + timedelta(seconds=30), "camera_offline"),
        (T0 + timedelta(seconds=60), T0 + timedelta(seconds=70), "not_recorded")]


def test_the_uploader_catalogs_what_the_recorder_could_not(tmp_path: Path) -> None:
    store = FilesystemStore(tmp_path / "store")
    store.ensure_ready()
    catalog = DownCatalog(f"sqlite:///{tmp_path / 'c.db'}")
    catalog.migrate()
    catalog.down = True
    spool = Spool(tmp_path / "spool")
    metrics = RecorderMetrics()
    uploader = Uploader(store, catalog, spool, metrics, lambda: T0, spool_limit=10**9, backoff_cap=0.2)
    segment, path = make_segment(tmp_path, T0)
    uploader.enqueue(spool.admit(segment, path))
    uploader.start()
    assert wait_until(lambda: metrics.upload_failures.labels(CAMERA)._value.get() >= 2)
    assert len(spool.pending()) == 1, "the segment waits in the spool while the database is down"
    catalog.down = False
    assert wait_until(lambda: uploader.backlog() == 0)
    uploader.stop(drain_seconds=1)
    row = catalog.segment(segment.key)
    assert row is not None and row.uploaded_at is not None and row.sha256 == segment.sha256


def test_database_and_disk_faults_are_never_blamed_on_the_camera() -> None:
    refused = OperationalError("INSERT", {}, Exception('connection to server at "127.0.0.1", port 5432 failed: '
                                                        "Connection refused"))
    fault = fault_from_exception(CAMERA, refused)
    assert fault.cause == GapCause.DATABASE_UNAVAILABLE and fault.camera_error is None
    full = fault_from_exception(CAMERA, OSError(errno.ENOSPC, "No space left on device"))
    assert full.cause == GapCause.DISK_FULL
    lines = ["[segment @ 0x1] Failure occurred when ending segment 'seg-000004.mp4'",
             "av_interleaved_write_frame(): No space left on device", "comment : rtsp-server"]
    assert fault_from_stderr(CAMERA, lines).cause == GapCause.DISK_FULL
    offline = fault_from_stderr(CAMERA, ["rtsp://127.0.0.1:1/x: Connection refused"])
    assert offline.cause == GapCause.CAMERA_OFFLINE and "unreachable" in offline.detail


def test_stop_sends_one_sigterm_and_waits(tmp_path: Path) -> None:
    counter = tmp_path / "signals"
    child = (
        "import signal, sys, time\n"
        f"path = {str(counter)!r}\n"
        "def on_term(*_):\n"
        "    open(path, 'a').write('T')\n"
        "signal.signal(signal.SIGTERM, on_term)\n"
        "open(path, 'a').write('')\n"
        "deadline = time.monotonic() + 1.5\n"
        "while time.monotonic() < deadline or not open(path).read():\n"
        "    time.sleep(0.05)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", child])
    assert wait_until(counter.exists, 20)
    process.terminate()  # the stop request's signal
    stop_process(process, grace=20, signalled=True)  # the loop's bounded wait: no second signal
    assert process.returncode == 0
    assert counter.read_text() == "T"


def test_temporary_manifests_go_and_unreadable_manifests_make_orphan_videos(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    segment, path = make_segment(tmp_path, T0)
    item = spool.admit(segment, path)
    (item.manifest.parent / ".tmp-abc").write_text("{")
    item.manifest.write_text('{"camera_id": "x", "key"')  # torn write
    spool = Spool(tmp_path / "spool")
    spool.scan(remove_temporary=True)  # the agent's scan at start
    assert not (item.manifest.parent / ".tmp-abc").exists()
    assert spool.pending() == [] and spool.orphan_videos() == [item.video]


def test_a_store_down_at_start_is_retried_on_use(tmp_path: Path) -> None:
    inner = FlakyStore(tmp_path / "store")
    inner.down.set()
    store = StoreWhenReachable(inner)
    try:
        store.stat(MediaKind.VIDEO, "video/x.mp4")
        raise AssertionError("a down store must raise")
    except StoreUnavailableError:
        pass
    inner.down.clear()
    started = time.monotonic()
    assert store.stat(MediaKind.VIDEO, "video/x.mp4") is None
    assert time.monotonic() - started < 5


def test_a_clock_step_inside_a_segment_is_retimed_by_the_monotonic_clock(tmp_path: Path) -> None:
    from jifang.recorder.runs import RunFolder

    run = RunFolder.create(tmp_path, T0)
    run.set_anchor(T0.timestamp())
    # ffmpeg's clock: seg 1 holds a +300 s step, seg 3 a -20 s one (its video squeezed into 0.5 s)
    listed = [("seg-000000.mp4", 0, 2), ("seg-000001.mp4", 2, 304), ("seg-000002.mp4", 304, 306),
              ("seg-000003.mp4", 306, 306.5), ("seg-000004.mp4", 306.5, 308.5)]
    opened = [100.0, 102.0, 104.0, 106.0, 128.0, 130.0]  # monotonic: every segment 2 s, seg 3 took 22 s
    for number, at in enumerate(opened):
        run.note_line(f"[segment @ 0x1] Opening '{run.path}/seg-{number:06d}.mp4' for writing", at)
    (run.path / "segments.csv").write_text("".join(f"{n},{s},{e}\n" for n, s, e in listed))
    found = run.new_listed()
    assert [((f.start - T0).total_seconds(), (f.end - T0).total_seconds()) for f in found] == [
        (0, 2), (2, 4), (4, 6), (6, 28), (28, 30)]
    assert [round(f.clock_step, 1) for f in found] == [0, 300.0, 0, -21.5, 0]


def test_a_listed_segment_waits_for_the_next_opening_while_ffmpeg_runs(tmp_path: Path) -> None:
    from jifang.recorder.runs import RunFolder

    run = RunFolder.create(tmp_path, T0)
    run.set_anchor(T0.timestamp())
    run.note_line("Opening 'x/seg-000000.mp4' for writing", 10.0)
    (run.path / "segments.csv").write_text("seg-000000.mp4,0,2\n")
    assert run.new_listed() == []
    run.note_line("Opening 'x/seg-000001.mp4' for writing", 12.0)
    assert [f.path.name for f in run.new_listed()] == ["seg-000000.mp4"]


def test_systemd_signals_only_the_agent_and_waits_for_both_stops() -> None:
    unit = (Path(__file__).resolve().parents[1] / "deploy" / "systemd" / "jifang-edge.service").read_text()
    settings = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line and not line.startswith("#"))
    assert settings["KillMode"] == "mixed", "control-group would SIGTERM every ffmpeg too (a second signal)"
    assert int(settings["TimeoutStopSec"]) >= 10 + 60  # ffmpeg's bounded wait + the upload drain
