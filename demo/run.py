"""``jifang demo``: four simulated cameras (two recorded, one face and one plate camera for recognition) run by an
edge agent on embedded defaults."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from jifang.demo.recognition import DEMO_PLATE
from jifang.edge.agent import EdgeAgent
from jifang.sim.camera import SimCamera

from jifang.config import dump_settings, parse_settings
from jifang.errors import ConfigError
from jifang.incidents.inbox import incidents
from jifang.supervision import stop_on_signals

log = logging.getLogger("jifang.demo")

DEMO_GRID = "331002001001001"  # 椒江区 (331002) + village/community code + serial 001
# the grid's 3+X+Y team (§6) who receive its incidents
DEMO_TEAM = (("王芳", "网格长"), ("李强", "网格指导员"), ("陈静", "专职网格员"))
DEMO_CAMERAS = [
    ("33100200001320000001", "demo-key", "key", "示范大门 (重点点位)"),
    ("33100200001320000002", "demo-important", "important", "示范广场 (重要部位)"),
]


def demo_settings(data: Path, urls: dict[str, str], models: Path | None = None) -> dict:
    data = data.resolve()
    recognition_cameras = []
    if models is not None:
        from jifang.demo.recognition import FACE_CAMERA, PLATE_CAMERA

        recognition_cameras = [
            {"id": cid, "name": name, "grid": DEMO_GRID, "tier": tier, "rtsp_url": urls[path], "recognize": [kind]}
            for (cid, path, tier, name), kind in ((FACE_CAMERA, "face"), (PLATE_CAMERA, "plate"))
        ]
    return {
        "version": 1,
        "site": "demo",
        "database": {"url": f"sqlite:///{data / 'jifang.db'}"},
        "storage": {"kind": "filesystem", "path": str(data / "store")},
        "recorder": {"segment_seconds": 10, "spool_dir": str(data / "spool")},
        "metrics": {"host": "127.0.0.1", "port": 9108},
        "recognition": {"models_dir": str(models or data / "models")},
        "grids": [{"code": DEMO_GRID, "name": "示范网格", "type": "城市社区",
                   "team": [{"name": name, "role": role} for name, role in DEMO_TEAM]}],
        "cameras": [
            {"id": camera_id, "name": name, "grid": DEMO_GRID, "tier": tier, "rtsp_url": urls[path]}
            for camera_id, path, tier, name in DEMO_CAMERAS
        ] + recognition_cameras,
    }


def run_demo(data: Path, duration: float | None = None, metrics_port: int = 9108) -> int:
    data.mkdir(parents=True, exist_ok=True)
    cameras = [SimCamera(path=path) for _id, path, _tier, _name in DEMO_CAMERAS]
    models, media = None, {}
    try:
        from jifang.demo.recognition import FACE_CAMERA, PLATE_CAMERA, models_dir, prepare_media

        models = models_dir(data)
        media = prepare_media(data)
        cameras += [SimCamera(path=FACE_CAMERA[1], video=media["face"], width=640, height=480),
                    SimCamera(path=PLATE_CAMERA[1], video=media["plate"])]
    except ConfigError as exc:
        print(f"recognition cameras left out: {exc}")
    try:
        urls = {camera.path: camera.start() for camera in cameras}
        settings = parse_settings(demo_settings(data, urls, models), "demo settings")
        config_path = data / "jifang.yaml"
        config_path.write_text(dump_settings(settings), encoding="utf-8")
        agent = EdgeAgent(settings)
        agent.open()
        if models is not None:
            from jifang.demo.recognition import enrol_demo_watchlist

            enrol_demo_watchlist(agent.catalog, models, media["people"])
        try:
            port = agent.serve_metrics(port=metrics_port)
        except ConfigError:  # 9108 taken (another agent or demo): any free port will do
            port = agent.serve_metrics(port=0)
        print(f"simulated cameras: {', '.join(urls.values())}")
        print(f"configuration:     {config_path.resolve()}")
        print(f"segments land in:  {settings.storage.path}/jifang-video/video/<camera>/...")
        print(f"catalog:           jifang catalog segments --config {config_path}")
        print(f"metrics:           http://127.0.0.1:{port}/metrics")
        from jifang.demo.dashboard import demo_users, serve_dashboard

        dashboard_url, dashboard = serve_dashboard(settings)
        users = demo_users(agent.catalog, data, DEMO_GRID)
        print(f"dashboard:         {dashboard_url}  (users in {data / 'demo-users.txt'}: "
              + ", ".join(f"{name} ({role})" for name, role, _password in users) + ")")
        if models is not None:
            print(f"incidents:         jifang incident list --config {config_path}  (watchlist: plate {DEMO_PLATE}, "
                  "a person in the sample photo)")
            threading.Thread(target=_print_incidents, args=(agent,), daemon=True).start()
        print("recording; press Ctrl-C to stop" if duration is None else f"recording for {duration:.0f} s",
              flush=True)
        stop = stop_on_signals()
        timer = threading.Timer(duration or 0, stop.set)
        timer.daemon = True
        if duration is not None:
            timer.start()
        try:
            agent.run(stop)
        finally:
            timer.cancel()
            dashboard.should_exit = True  # type: ignore[attr-defined]
        recorded = len(agent.catalog.segments())
        if models is not None:
            print(f"{len(incidents(agent.catalog))} incidents reported", flush=True)
        print(f"stopped; {recorded} segments in the catalog", flush=True)
    finally:
        for camera in cameras:
            camera.stop()
    return 0


def _print_incidents(agent: EdgeAgent) -> None:
    """Show each new incident as it is reported, as a grid worker's inbox would."""
    seen: set[int] = set()
    while True:
        try:
            for row in reversed(incidents(agent.catalog)):
                if row.id not in seen:
                    seen.add(row.id)
                    print(f"incident {row.id} [{row.category}/{row.subcategory}] {row.summary}", flush=True)
        except Exception:  # the catalog is closing at shutdown
            return
        time.sleep(2)
