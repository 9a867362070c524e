"""Fleet load test (run on demand; prints numbers): several edge agents share many simulated cameras through
database leases, recording to the S3 test server and PostgreSQL; one agent is SIGKILLed half-way.

    .venv/bin/python bench/fleet_bench.py [--agents 3] [--cameras 20] [--minutes 10] [--lease 15]
        [--pg postgresql+psycopg2://jifang:jifang@127.0.0.1:5432/jifang_test]

Reports: segments recorded/uploaded/dropped, catalog versus store agreement, the failover time (SIGKILL to
every orphaned camera recording again) and the gap it left, CPU and peak memory per agent (agent process
plus its ffmpeg children). Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from jifang.sim.camera import SimCamera  # noqa: E402

from bench.record_bench import TICKS  # noqa: E402
from jifang.db import Catalog  # noqa: E402
from jifang.tiers import MediaKind  # noqa: E402

GRID = "331002001001001"


def tree(pid: int) -> list[int]:
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def cpu_and_rss(pid: int) -> tuple[float, int]:
    cpu, rss = 0.0, 0
    for member in tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += sum(map(int, fields[11:15])) / TICKS
            rss += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            continue
    return cpu, rss


def main() -> None:
    from bench.s3 import start_s3

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--cameras", type=int, default=20, help="cameras per agent")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--lease", type=float, default=15)
    parser.add_argument("--pg", default="postgresql+psycopg2://jifang:jifang@127.0.0.1:5432/jifang_test")
    args = parser.parse_args()
    s3, endpoint, store = start_s3()
    schema = f"fleet_{int(time.time())}"
    admin = sqlalchemy.create_engine(args.pg)
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"CREATE SCHEMA {schema}"))
    db_url = f"{args.pg}?options=-csearch_path%3D{schema}"
    camera = SimCamera(path="fleet", width=320, height=240, fps=10, bitrate_kbps=300)
    url = camera.start()
    total = args.agents * args.cameras
    cameras = [f"331002000013200{i:05d}" for i in range(total)]
    env = {**os.environ, "JIFANG_MINIO_ACCESS_KEY": "k", "JIFANG_MINIO_SECRET_KEY": "s"}
    agents: dict[str, subprocess.Popen] = {}
    peaks: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="jifang-fleet-") as tmp:
        for n in range(args.agents):
            folder = Path(tmp) / f"agent{n}"
            folder.mkdir()
            config = folder / "jifang.yaml"
            config.write_text(yaml.safe_dump({
                "version": 1, "site": "bench", "database": {"url": db_url},
                "storage": {"kind": "minio", "minio": {"endpoint": endpoint, "secure": False}},
                "recorder": {"segment_seconds": 10, "spool_dir": str(folder / "spool"), "lease_seconds": args.lease},
                "grids": [{"code": GRID, "name": "bench"}],
                "cameras": [{"id": c, "name": c[-5:], "grid": GRID, "tier": "important", "rtsp_url": url}
                            for c in cameras],
            }))
            agents[f"agent{n}"] = subprocess.Popen(
                [sys.executable, "-m", "jifang.cli", "--log-level", "warning", "edge", "run", "--config", str(config),
                 "--metrics-port", "0", "--no-check"], cwd=REPO, env={**env, "JIFANG_AGENT_ID": f"agent{n}"},
                stdout=subprocess.DEVNULL, stderr=open(folder / "agent.log", "w"))  # noqa: SIM115
        engine = sqlalchemy.create_engine(db_url)

        def owners() -> dict[str, str]:
            with engine.connect() as conn:
                return dict(conn.execute(sqlalchemy.text("SELECT camera_id, agent_id FROM camera_leases")).all())

        start = time.monotonic()
        cpu0 = {name: cpu_and_rss(p.pid)[0] for name, p in agents.items()}
        victim = "agent0"
        killed_at: datetime | None = None
        orphaned: list[str] = []
        failover = None
        while time.monotonic() - start < args.minutes * 60:
            for name, process in agents.items():
                if process.poll() is None:
                    peaks[name] = max(peaks.get(name, 0), cpu_and_rss(process.pid)[1])
            if killed_at is None and time.monotonic() - start > args.minutes * 30:
                orphaned = [c for c, a in owners().items() if a == victim]
                cpu0[victim] = cpu_and_rss(agents[victim].pid)[0] - cpu0[victim]
                agents[victim].send_signal(signal.SIGKILL)
                agents[victim].wait()
                killed_at = datetime.now(UTC)
                print(f"SIGKILLed {victim} holding {len(orphaned)} cameras at {time.monotonic() - start:.0f} s",
                      flush=True)
            if killed_at is not None and failover is None and orphaned:
                catalog = Catalog(db_url)
                if all(any(r.start_at > killed_at for r in catalog.segments(c)) for c in orphaned):
                    failover = (datetime.now(UTC) - killed_at).total_seconds()
                catalog.dispose()
            time.sleep(2)
        elapsed = time.monotonic() - start
        usage = {}
        for name, process in agents.items():
            if process.poll() is None:
                usage[name] = cpu_and_rss(process.pid)[0] - cpu0[name]
                process.send_signal(signal.SIGTERM)
        for process in agents.values():
            process.wait(180)
        catalog = Catalog(db_url)
        rows = [r for c in cameras for r in catalog.segments(c)]
        uploaded = sum(1 for r in rows if r.uploaded_at is not None)
        stored = {o.key for o in store.list(MediaKind.VIDEO, "video/")}
        gaps = [g for c in orphaned for g in catalog.gaps(c)]
        if killed_at is not None and orphaned:
            # when each orphaned camera's video starts again (capture time), not when its first segment closes
            resumed = [min((r.start_at for r in catalog.segments(c) if r.start_at > killed_at), default=None)
                       for c in orphaned]
            failover = (max(resumed) - killed_at).total_seconds() if all(resumed) else None
        catalog.dispose()
    camera.stop()
    s3.stop()
    with admin.begin() as conn:
        conn.execute(sqlalchemy.text(f"DROP SCHEMA {schema} CASCADE"))
    print(f"fleet: {args.agents} agents x {args.cameras} cameras (320x240, real RTSP) for {elapsed / 60:.1f} min, "
          f"lease {args.lease:g} s, S3 test server + PostgreSQL")
    print(f"  segments catalogued {len(rows)}, uploaded {uploaded}, in the store {len(stored)}, "
          f"catalog == store: {stored == {r.key for r in rows if r.uploaded_at}}")
    print(f"  failover: orphaned cameras {len(orphaned)}, all recording again {failover:.1f} s after SIGKILL "
          f"(video capture time; lease {args.lease:g} s)"
          if failover is not None else "  failover: not observed")
    longest = max((((g.end_at or g.start_at) - g.start_at).total_seconds() for g in gaps), default=0.0)
    print(f"  gap rows on orphaned cameras: {len(gaps)}; longest {longest:.1f} s")
    for name in sorted(agents):
        share = usage.get(name, cpu0.get(name, 0.0))
        print(f"  {name}: CPU {100 * share / elapsed:.1f} % of a core over the run, peak RSS "
              f"{peaks.get(name, 0) / 2**20:.0f} MiB (agent + ffmpeg children)")


if __name__ == "__main__":
    main()
