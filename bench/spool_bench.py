"""A recovered spool: how fast the edge agent queues it, starts uploading and drains it (on demand).

    .venv/bin/python bench/spool_bench.py [--segments 100000] [--cameras 16] [--window 10]
                                          [--drain-segments 64 --drain-mb 5] [--workers 1 2 4]
                                          [--skip-recovery] [--skip-drain]

1. Recovery: a spool of ``--segments`` tiny segments over ``--cameras`` cameras, all catalogued (as the
   recorder leaves them when the store was down for days), then the real ``EdgeAgent.open()`` + ``start()``:
   the time until every segment is queued, and until the first one is in the store. Recovery queues each
   segment by its file name; its manifest is read by the upload worker, so that cost is in the upload rate,
   not in the queueing time. The spool has just been written, so its directories are in the page cache.
2. Drain rate: ``--drain-segments`` segments of ``--drain-mb`` MB (a 10 s segment at 4 Mbit/s is 5 MB),
   uploaded by 1, 2 and 4 workers; MB/s and the ratio to one worker (the serial uploader of before).

The S3 test server (moto) runs as its own process, as a store would, so its CPU is not the client's. On a
shared 2-core machine the server and the client compete for the same cores: the parallel gain measured here
is a floor, not what a real MinIO on its own hardware gives.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402
from jifang.edge.agent import EdgeAgent  # noqa: E402
from jifang.recorder.spool import _segment_to_json  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from jifang.config import Settings  # noqa: E402
from jifang.db import Catalog, SegmentRow  # noqa: E402
from jifang.domain import Segment, utc_stamp, video_key  # noqa: E402
from jifang.tiers import MediaKind, Tier, retain_until  # noqa: E402

GRID = "331002001001001"
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_s3_process() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the S3 test server did not start")


def camera_ids(count: int) -> list[str]:
    return [f"331002000013200{i:05d}" for i in range(1, count + 1)]


def build_spool(root: Path, db_url: str, cameras: list[str], per_camera: int, body_bytes: int) -> int:
    """Write a spool as the recorder leaves it (video + manifest per segment, catalogued), quickly: no fsync,
    one bulk insert. Not timed."""
    catalog = Catalog(db_url)
    catalog.migrate()
    rows, total = [], 0
    body = os.urandom(body_bytes)
    sha = hashlib.sha256(body).hexdigest()
    for camera in cameras:
        folder = root / "segments" / camera
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_camera):
            start = T0 + timedelta(seconds=10 * index)
            end = start + timedelta(seconds=10)
            segment = Segment(camera, video_key(camera, start), start, end, body_bytes, sha, Tier.IMPORTANT, GRID,
                              retain_until(end, Tier.IMPORTANT, MediaKind.VIDEO))
            stem = utc_stamp(start)  # the names Spool.admit gives
            (folder / f"{stem}.mp4").write_bytes(body)
            (folder / f"{stem}.json").write_text(json.dumps(_segment_to_json(segment)))
            rows.append({"camera_id": camera, "key": segment.key, "start_at": start, "end_at": end,
                         "bytes": body_bytes, "sha256": sha, "tier": str(Tier.IMPORTANT), "grid": GRID,
                         "retain_until": segment.retain_until, "recorded_at": end})
            total += 1
    with catalog.engine.begin() as conn:
        for offset in range(0, len(rows), 5000):
            conn.execute(insert(SegmentRow), rows[offset:offset + 5000])
    catalog.dispose()
    return total


def settings_for(work: Path, endpoint: str, cameras: list[str], workers: int) -> Settings:
    return Settings.model_validate({
        "version": 1,
        "database": {"url": f"sqlite:///{work / 'jifang.db'}"},
        "storage": {"kind": "minio", "minio": {"endpoint": endpoint, "secure": False}},
        "recorder": {"spool_dir": str(work / "spool"), "upload_workers": workers},
        "grids": [{"code": GRID, "name": "bench"}],
        # disabled: the agent recovers and uploads their spool but records nothing, so only the queue is timed
        "cameras": [{"id": c, "name": c, "grid": GRID, "tier": "important", "rtsp_url": "rtsp://127.0.0.1:1/x",
                     "enabled": False} for c in cameras],
    })


def uploaded(agent: EdgeAgent) -> float:
    return sum(sample.value for metric in agent.metrics.uploaded.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


def bench_recovery(args: argparse.Namespace, endpoint: str, tmp: Path) -> None:
    work = tmp / "recovery"
    cameras = camera_ids(args.cameras)
    per_camera = args.segments // args.cameras
    count = build_spool(work / "spool", f"sqlite:///{work / 'jifang.db'}", cameras, per_camera, 512)
    t0, cpu0 = time.monotonic(), time.process_time()
    agent = EdgeAgent(settings_for(work, endpoint, cameras, max(args.workers)), preflight=False)
    agent.open()
    queued_s, queued_cpu = time.monotonic() - t0, time.process_time() - cpu0
    assert agent.uploader is not None
    backlog = agent.uploader.backlog()
    agent.start()
    while uploaded(agent) < 1 and time.monotonic() - t0 < 120:
        time.sleep(0.01)
    first_s = time.monotonic() - t0
    time.sleep(args.window)
    done = uploaded(agent)
    agent.shutdown(drain_seconds=0)
    print(f"recovery: {count} spooled segments over {args.cameras} cameras, {max(args.workers)} upload workers")
    print(f"  queued (open: store, catalog, spool scan, {backlog} enqueued)  {queued_s:.2f} s "
          f"({queued_cpu:.2f} s of CPU: what it takes on an idle core)")
    print(f"  first segment in the store                                  {first_s:.2f} s after start")
    print(f"  small-object upload rate in the next {args.window:.0f} s                     "
          f"{done / args.window:.0f} segments/s")


def bench_drain(args: argparse.Namespace, endpoint: str, tmp: Path) -> None:
    cameras = camera_ids(args.cameras)
    per_camera = max(1, args.drain_segments // args.cameras)
    body = args.drain_mb * 1024 * 1024
    rates: dict[int, float] = {}
    for workers in args.workers:
        work = tmp / f"drain-{workers}"
        count = build_spool(work / "spool", f"sqlite:///{work / 'jifang.db'}", cameras, per_camera, body)
        # every run uploads the same keys: empty the server first
        requests.post(f"http://{endpoint}/moto-api/reset", timeout=30).raise_for_status()
        agent = EdgeAgent(settings_for(work, endpoint, cameras, workers), preflight=False)
        agent.open()
        assert agent.uploader is not None
        t0 = time.monotonic()
        agent.start()
        while agent.uploader.backlog() and time.monotonic() - t0 < 600:
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        left = agent.uploader.backlog()
        agent.shutdown(drain_seconds=0)
        rates[workers] = (count - left) * args.drain_mb / elapsed
        print(f"drain: {count} x {args.drain_mb} MB, {workers} workers: {rates[workers]:.0f} MB/s "
              f"({elapsed:.1f} s{f', {left} left' if left else ''})"
              + (f", {rates[workers] / rates[args.workers[0]]:.2f}x {args.workers[0]} worker(s)"
                 if workers != args.workers[0] else ""))
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--segments", type=int, default=100_000)
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--window", type=float, default=10.0, help="seconds of small uploads after the first")
    parser.add_argument("--drain-segments", type=int, default=64)
    parser.add_argument("--drain-mb", type=int, default=5)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--skip-recovery", action="store_true")
    parser.add_argument("--skip-drain", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("JIFANG_MINIO_ACCESS_KEY", "bench")
    os.environ.setdefault("JIFANG_MINIO_SECRET_KEY", "bench-secret")
    server, endpoint = start_s3_process()
    print(f"S3 test server (moto) in its own process at {endpoint}; machine: {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    try:
        with tempfile.TemporaryDirectory(prefix="jifang-spool-bench-") as tmp:
            if not args.skip_recovery:
                bench_recovery(args, endpoint, Path(tmp))
            if not args.skip_drain:
                bench_drain(args, endpoint, Path(tmp))
    finally:
        server.terminate()
        server.wait(30)
        print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
