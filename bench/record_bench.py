"""Recording cost and upload throughput, measured on this machine (run on demand; prints numbers).

    .venv/bin/python bench/record_bench.py [--streams 4] [--seconds 60] [--width 1920 --height 1080 --fps 25
                                            --bitrate 4000]

1. CPU of copy-mode recording: one simulated 1080p H.264 camera, N edge-agent cameras pulling it (the
   recorder's cost does not depend on which camera a packet comes from). Measures the agent process and all
   its children (ffmpeg recorders, ffprobe validations) over the run: CPU % of one core per stream, and how
   many streams one core holds.
2. Upload throughput of the MinIO adapter to the S3 test server (moto) on loopback, 5 MB segments.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jifang.sim.camera import SimCamera  # noqa: E402

from jifang.domain import ObjectMeta  # noqa: E402
from jifang.tiers import MediaKind, Tier  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live descendants."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ppid, utime, stime, cutime, cstime = int(fields[1]), *map(int, fields[11:15])
        if int(entry.name) == pid or ppid == pid:
            total += (utime + stime + cutime + cstime) / TICKS
    return total


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(map(int, fields[11:13])) / TICKS


def bench_recording(args: argparse.Namespace, work: Path) -> None:
    camera = SimCamera(path="bench", width=args.width, height=args.height, fps=args.fps,
                       bitrate_kbps=args.bitrate, pattern=args.pattern)
    url = camera.start()
    grid = "331002001001001"
    config = {
        "version": 1,
        "database": {"url": f"sqlite:///{work / 'jifang.db'}"},
        "storage": {"kind": "filesystem", "path": str(work / "store")},
        "recorder": {"segment_seconds": 10, "spool_dir": str(work / "spool")},
        "grids": [{"code": grid, "name": "bench"}],
        "cameras": [{"id": f"331002000013200{i:05d}", "name": f"bench {i}", "grid": grid, "tier": "important",
                     "rtsp_url": url} for i in range(1, args.streams + 1)],
    }
    path = work / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    agent = subprocess.Popen([sys.executable, "-m", "jifang.cli", "--log-level", "warning", "edge", "run",
                              "--config", str(path), "--metrics-port", "0"], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(15)  # connect, first key frame, steady state
        agent_cpu0, tree_cpu0, t0 = process_cpu_seconds(agent.pid), tree_cpu_seconds(agent.pid), time.monotonic()
        sim_cpu0 = process_cpu_seconds(camera.process.pid)
        time.sleep(args.seconds)
        elapsed = time.monotonic() - t0
        agent_cpu = process_cpu_seconds(agent.pid) - agent_cpu0
        tree_cpu = tree_cpu_seconds(agent.pid) - tree_cpu0
        sim_cpu = process_cpu_seconds(camera.process.pid) - sim_cpu0
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(120)
        camera.stop()
    from jifang.db import Catalog

    rows = Catalog(f"sqlite:///{work / 'jifang.db'}").segments()
    kbits = 8 * sum(row.bytes for row in rows) / 1000
    seconds = sum((row.end_at - row.start_at).total_seconds() for row in rows)
    per_stream = 100 * tree_cpu / elapsed / args.streams
    print(f"recording: {args.streams} streams of {args.width}x{args.height} {args.fps} fps ~{args.bitrate} kbit/s "
          f"for {elapsed:.0f} s")
    print(f"  recorded bitrate per stream                {kbits / max(seconds, 1):.0f} kbit/s "
          f"({len(rows)} segments, {seconds:.0f} s of video)")
    print(f"  CPU per stream (agent + ffmpeg + ffprobe)  {per_stream:.2f} % of one core")
    print(f"  of which the Python agent                  {100 * agent_cpu / elapsed / args.streams:.2f} %")
    print(f"  streams one core holds                     {100 / per_stream:.0f}" if per_stream else "")
    print(f"  (simulated camera encoding, not counted:   {100 * sim_cpu / elapsed:.1f} % of one core)")


def bench_upload(count: int, size_mb: int, work: Path) -> None:
    from bench.s3 import start_s3

    server, _endpoint, store = start_s3()
    now = datetime.now(UTC)
    files = []
    for i in range(count):
        path = work / f"up-{i}.mp4"
        data = os.urandom(size_mb * 1024 * 1024)
        path.write_bytes(data)
        files.append((path, hashlib.sha256(data).hexdigest()))
    t0 = time.monotonic()
    for i, (path, sha) in enumerate(files):
        meta = ObjectMeta("33100200001320000001", "g", Tier.KEY, now, now, sha)
        store.put(MediaKind.VIDEO, f"video/bench/{i:05d}.mp4", path, meta, now + timedelta(days=92))
    elapsed = time.monotonic() - t0
    server.stop()
    print(f"upload: {count} x {size_mb} MB segments with COMPLIANCE lock to the S3 test server (moto, loopback)")
    print(f"  {count * size_mb / elapsed:.1f} MB/s, {1000 * elapsed / count:.0f} ms per segment (HEAD + PUT)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--bitrate", type=int, default=4000)
    parser.add_argument("--pattern", default="smpte", help="sim camera pattern; snow is busiest (full bitrate)")
    parser.add_argument("--uploads", type=int, default=40)
    parser.add_argument("--upload-mb", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jifang-bench-") as tmp:
        bench_recording(args, Path(tmp))
        bench_upload(args.uploads, args.upload_mb, Path(tmp))


if __name__ == "__main__":
    main()
