"""A watchlist hit becomes an Appendix A incident: evidence under legal hold, routed to the grid team by
role, delivered over a real MQTT broker and a signed webhook, retried until delivered."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from jifang.recognition.delivery import SIGNATURE_HEADER, TIMESTAMP_HEADER, Deliverer, sign
from jifang.recognition.gat1400 import to_gat1400
from jifang.recognition.reporting import IncidentReporter, Observation
from jifang.recognition.watchlist import Watchlist, plate_distance_ok

from jifang.config import parse_settings
from jifang.crypto import SecretBox
from jifang.db import Catalog
from jifang.errors import ConfigError
from jifang.incidents import State, category_problem, gbt31000_code
from jifang.incidents.inbox import incident_document
from jifang.incidents.workflow import advance
from jifang.registry import Registry
from jifang.store import FilesystemStore
from jifang.tiers import MediaKind, retain_until

GRID = "331002001001001"
CAMERA = "33100200001320000001"
NOW = datetime.now(UTC).replace(microsecond=0)


class Receiver(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict, str, str, bytes]]] = []
    fail_first: ClassVar[int] = 0

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if Receiver.fail_first > 0:
            Receiver.fail_first -= 1
            self.send_response(503)
            self.end_headers()
            return
        Receiver.received.append((json.loads(body), self.headers[SIGNATURE_HEADER], self.headers[TIMESTAMP_HEADER],
                                  body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def webhook():  # type: ignore[no-untyped-def]
    Receiver.received = []
    Receiver.fail_first = 1  # the first attempt fails: the delivery must be retried, not lost
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def build(tmp_path: Path, mqtt_port: int, hook_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HOOK_SECRET", "s3cret-hook")
    settings = parse_settings({
        "version": 1, "database": {"url": f"sqlite:///{tmp_path / 'c.db'}"},
        "storage": {"kind": "filesystem", "path": str(tmp_path / "store")},
        "grids": [{"code": GRID, "name": "g"}],
        "cameras": [{"id": CAMERA, "name": "东门卡口", "grid": GRID, "tier": "key", "rtsp_url": "rtsp://h/x",
                     "recognize": ["plate", "face"]}],
        "recognition": {"mqtt": {"host": "127.0.0.1", "port": mqtt_port},
                        "webhooks": [{"url": hook_url, "secret": {"env": "HOOK_SECRET"}}]},
    }, "test", environ={})
    catalog = Catalog(settings.database.url)
    catalog.migrate()
    registry = Registry(catalog, SecretBox(SecretBox.new_key()))
    registry.add_grid(GRID, "g", "城市社区")
    for name, role in (("兼职甲", "兼职网格员"), ("王芳", "网格长"), ("陈静", "专职网格员"), ("李强", "网格指导员")):
        registry.add_member(GRID, name, role)
    store = FilesystemStore(settings.storage.path)
    store.ensure_ready()
    holds: list[tuple] = []
    reporter = IncidentReporter(settings, catalog, store, lambda: NOW,
                                hold=lambda *args: holds.append(args))
    return settings, catalog, store, reporter, holds


def test_plate_hit_becomes_a_routed_delivered_incident(tmp_path: Path, mqtt_broker: int, webhook: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    settings, catalog, store, reporter, holds = build(tmp_path, mqtt_broker, webhook, monkeypatch)
    watchlist = Watchlist(catalog)
    watchlist.add(kind="plate", name="被盗车辆", plate="浙J12345", category="案事件", subcategory="治安刑事案件",
                  reason="被盗车辆协查", owner="椒江派出所", at=NOW)
    messages: list[tuple[str, dict]] = []
    subscriber = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    subscriber.on_message = lambda _c, _u, msg: messages.append((msg.topic, json.loads(msg.payload)))
    subscriber.connect("127.0.0.1", mqtt_broker)
    subscriber.subscribe("jifang/grid/+/incident", qos=1)
    subscriber.loop_start()

    camera = settings.cameras[0]
    hit = watchlist.match_plate("浙J12845", NOW, fuzzy=True)  # 8 for 3? not confusable: no hit
    assert hit is None
    hit = watchlist.match_plate("浙J1Z345", NOW, fuzzy=True)  # Z read for 2: one confusable character
    assert hit is not None and hit.fuzzy
    sighting = reporter.record(Observation("plate", camera, NOW, b"crop-jpeg", b"frame-jpeg", text="浙J1Z345",
                                           color="blue", confidence=0.93), hit)
    assert sighting.incident_id is not None
    document = incident_document(catalog, sighting.incident_id)
    assert (document["category"], document["subcategory"], document["gbt31000_code"], document["state"]) == (
        "案事件", "治安刑事案件", "CaseType:04", "上报")
    assert [(r["role"], r["name"]) for r in document["recipients"]] == [
        ("专职网格员", "陈静"), ("网格长", "王芳"), ("网格指导员", "李强"), ("兼职网格员", "兼职甲")]
    evidence = document["evidence"]
    for key in (evidence["crop"], evidence["frame"]):
        stored = store.stat(MediaKind.IMAGE, key)
        assert stored.legal_hold and stored.retain_until == retain_until(NOW, "key", MediaKind.IMAGE)
    assert holds == [(CAMERA, NOW - timedelta(seconds=15), NOW + timedelta(seconds=15),
                      "事件证据：案事件/治安刑事案件 被盗车辆")]

    deliverer = Deliverer(settings, catalog, lambda: datetime.now(UTC))
    assert deliverer.deliver_due() == 1  # MQTT delivered; the webhook answered 503
    assert deliverer.failures.labels("webhook")._value.get() == 1
    rows = {d["channel"]: d for d in delivery_rows(catalog)}
    assert rows[f"webhook:{webhook}"]["last_error"] == "ConnectionError: HTTP 503"
    force_due(catalog)
    assert deliverer.deliver_due() == 1
    assert all(d["delivered_at"] for d in delivery_rows(catalog))
    deliverer.stop()

    body_json, signature, timestamp, raw = Receiver.received[0]
    assert body_json["id"] == sighting.incident_id and body_json["recognition"]["text"] == "浙J1Z345"
    assert hmac.compare_digest(signature, sign("s3cret-hook", timestamp, raw))
    assert signature == "sha256=" + hmac.new(b"s3cret-hook", timestamp.encode() + b"." + raw,
                                             hashlib.sha256).hexdigest()
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while not messages and datetime.now(UTC) < deadline:
        threading.Event().wait(0.1)
    subscriber.loop_stop()
    assert messages and messages[0][0] == f"jifang/grid/{GRID}/incident"
    assert messages[0][1]["summary"].startswith("东门卡口: 车牌 浙J1Z345")

    gat = to_gat1400(document)["MotorVehicleListObject"]["MotorVehicleObject"][0]
    assert gat["PlateNo"] == "浙J1Z345" and gat["PlateColor"] == "5" and gat["DeviceID"] == CAMERA
    assert len(gat["PassTime"]) == 14


def test_assignee_must_be_in_the_incident_grid_team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLI (`jifang incident advance --assignee`) and the dashboard both go through advance()
    settings, catalog, _store, reporter, _holds = build(tmp_path, 1, "http://127.0.0.1:9/hook", monkeypatch)
    watchlist = Watchlist(catalog)
    watchlist.add(kind="plate", name="被盗车辆", plate="浙J12345", category="案事件", subcategory="治安刑事案件",
                  reason="协查", owner="椒江派出所", at=NOW)
    sighting = reporter.record(Observation("plate", settings.cameras[0], NOW, b"c", b"f", text="浙J12345",
                                           color="blue", confidence=0.9), watchlist.match_plate("浙J12345", NOW))
    incident = sighting.incident_id
    assert incident is not None
    advance(catalog, incident, State.ACCEPTED, "王芳", NOW)
    with pytest.raises(ConfigError, match=r"'张三' is not in the team of grid 331002001001001 \(members: .*陈静"):
        advance(catalog, incident, State.ASSIGNED, "王芳", NOW, assignee="张三")
    assert advance(catalog, incident, State.ASSIGNED, "王芳", NOW, assignee="陈静").state == str(State.ASSIGNED)


def test_face_non_match_keeps_no_crop_and_makes_no_incident(tmp_path: Path, mqtt_broker: int, webhook: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    settings, catalog, store, reporter, _holds = build(tmp_path, mqtt_broker, webhook, monkeypatch)
    watchlist = Watchlist(catalog)
    rng = np.random.default_rng(1)
    enrolled = rng.normal(size=128).astype(np.float32)
    watchlist.add(kind="face", name="张某", category="人员管理", subcategory="重点人员", reason="在逃", owner="所",
                  at=NOW, embeddings=[(enrolled, "a.jpg")])
    stranger = rng.normal(size=128)
    assert watchlist.match_face(stranger, NOW, threshold=0.36) is None
    sighting = reporter.record(Observation("face", settings.cameras[0], NOW, b"crop", b"frame"), None)
    assert sighting.crop_key == "" and sighting.incident_id is None
    assert list(store.list(MediaKind.IMAGE, "images/")) == []
    near = enrolled + 0.2 * rng.normal(size=128)
    hit = watchlist.match_face(near, NOW, threshold=0.36)
    assert hit is not None and hit.entry.name == "张某" and hit.similarity > 0.9
    assert watchlist.match_face(near, NOW + timedelta(days=1), threshold=0.36) is not None


def test_appendix_a_pairs_and_workflow() -> None:
    assert category_problem("人员管理", "重点人员") is None
    assert "must be one of" in category_problem("人员管理", "涉稳事件")
    assert gbt31000_code("人员管理", "重点人员") is None
    assert [s.value for s in State] == ["上报", "受理", "分派", "处置", "反馈", "办结"]
    assert plate_distance_ok("浙J0A123", "浙JDA123") and not plate_distance_ok("浙J0A123", "浙JDA124")


def delivery_rows(catalog: Catalog) -> list[dict]:
    from jifang.db.models import Delivery

    with catalog.session() as session:
        return [{"channel": d.channel, "delivered_at": d.delivered_at, "last_error": d.last_error}
                for d in session.query(Delivery).all()]


def force_due(catalog: Catalog) -> None:
    from jifang.db.models import Delivery

    with catalog.session() as session:
        for row in session.query(Delivery).all():
            row.next_attempt_at = datetime.now(UTC) - timedelta(seconds=1)
        session.commit()
