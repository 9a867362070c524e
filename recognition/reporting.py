"""Turning a watchlist hit into an Appendix A incident report: evidence stored under the image tier and held,
the covering video held, the grid's team chosen by role, and one outbox row per delivery channel."""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from jifang.recognition.evidence import EvidenceSpool
from jifang.recognition.watchlist import Hit
from sqlalchemy import select

from jifang.config import CameraConfig, Settings
from jifang.db import Catalog
from jifang.db.models import Delivery, IncidentRecipient, IncidentRow, IncidentStep, Sighting, TeamMemberRow
from jifang.domain import ObjectMeta, utc_stamp
from jifang.incidents import State, gbt31000_code
from jifang.store import ObjectStore
from jifang.tiers import MediaKind, retain_until

log = logging.getLogger("jifang.incidents")


@dataclass
class Observation:
    """What a pipeline saw: a plate read or a face, with its evidence images (JPEG bytes)."""

    kind: str  # plate | face
    camera: CameraConfig
    seen_at: datetime
    crop_jpeg: bytes
    frame_jpeg: bytes
    text: str = ""
    valid: bool = True
    color: str = ""
    confidence: float = 0.0
    extra: dict = field(default_factory=dict)


def image_key(camera_id: str, at: datetime, kind: str) -> str:
    return f"images/{camera_id}/{at:%Y/%m/%d}/{utc_stamp(at)}-{kind}.jpg"


class IncidentReporter:
    def __init__(self, settings: Settings, catalog: Catalog, store: ObjectStore, clock: Callable[[], datetime],
                 hold: Callable[[str, datetime, datetime, str], object] | None = None,
                 evidence: EvidenceSpool | None = None) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self.clock = clock
        self.hold = hold  # RetentionService.hold-like: (camera, start, end, reason) -> hold
        self.evidence = evidence  # the agent spools images; without a spool they are stored directly

    def _put_image(self, camera: CameraConfig, at: datetime, kind: str, data: bytes, held: bool) -> str:
        key = image_key(camera.id, at, kind)
        meta = ObjectMeta(camera.id, camera.grid, camera.tier, at, at, hashlib.sha256(data).hexdigest())
        floor = retain_until(at, camera.tier, MediaKind.IMAGE)
        if self.evidence is not None:  # durable once spooled: the sighting may point at it before the upload
            self.evidence.admit(key, data, meta, floor, held)
            return key
        with tempfile.NamedTemporaryFile(suffix=".jpg") as tmp:
            Path(tmp.name).write_bytes(data)
            self.store.put(MediaKind.IMAGE, key, Path(tmp.name), meta, floor)
        if held:
            self.store.set_legal_hold(MediaKind.IMAGE, key, True)
        return key

    def record(self, observation: Observation, hit: Hit | None) -> Sighting:
        """Store a sighting (hit or not); a hit also becomes an incident."""
        camera, at = observation.camera, observation.seen_at
        keep = retain_until(at, camera.tier, MediaKind.IMAGE)
        crop_key = ""
        if hit is not None or observation.kind == "plate":
            # face crops of non-matches are not kept at all; plate crops are kept for their image tier
            crop_key = self._put_image(camera, at, f"{observation.kind}-crop", observation.crop_jpeg, hit is not None)
        with self.catalog.session() as session:
            sighting = Sighting(kind=observation.kind, camera_id=camera.id, seen_at=at, text=observation.text,
                                valid=observation.valid, color=observation.color, confidence=observation.confidence,
                                entry_id=hit.entry.id if hit else None, similarity=hit.similarity if hit else None,
                                crop_key=crop_key, retain_until=keep)
            session.add(sighting)
            session.commit()
        if hit is not None:
            incident = self._recent_incident(observation, hit) or self._incident(observation, hit, crop_key)
            with self.catalog.session() as session:
                row = session.get(Sighting, sighting.id)
                row.incident_id = incident.id
                session.commit()
                sighting.incident_id = incident.id
        return sighting

    def _recent_incident(self, observation: Observation, hit: Hit) -> IncidentRow | None:
        """The incident this camera already reported for the same entry within the cooldown: a person or car
        that comes back within minutes is one incident with several sightings, not a stream of alerts."""
        since = observation.seen_at - timedelta(seconds=self.settings.recognition.incident_cooldown_seconds)
        with self.catalog.session() as session:
            return session.scalar(select(IncidentRow).join(Sighting, Sighting.incident_id == IncidentRow.id).where(
                IncidentRow.camera_id == observation.camera.id, Sighting.entry_id == hit.entry.id,
                IncidentRow.occurred_at >= since).order_by(IncidentRow.id.desc()).limit(1))

    def _incident(self, observation: Observation, hit: Hit, crop_key: str) -> IncidentRow:
        camera, at, entry = observation.camera, observation.seen_at, hit.entry
        frame_key = self._put_image(camera, at, f"{observation.kind}-frame", observation.frame_jpeg, True)
        window = timedelta(seconds=self.settings.recognition.evidence_seconds)
        if self.hold is not None:
            self.hold(camera.id, at - window, at + window,
                      f"事件证据：{entry.category}/{entry.subcategory} {entry.name}")
        # Appendix A reports are read by the grid team: the stored summary and notes are Chinese, like the standard
        what = f"车牌 {observation.text}" if observation.kind == "plate" else f"人脸 {entry.name}"
        details = {
            "watchlist": {"id": entry.id, "name": entry.name, "reason": entry.reason, "owner": entry.owner},
            "recognition": {"kind": observation.kind, "text": observation.text, "color": observation.color,
                            "confidence": observation.confidence, "similarity": round(hit.similarity, 4),
                            "fuzzy": hit.fuzzy, **observation.extra},
            "evidence": {"crop": crop_key, "frame": frame_key, "bucket": "jifang-images",
                         "video": {"camera": camera.id, "from": (at - window).isoformat(),
                                   "to": (at + window).isoformat(), "offset_of_hit_seconds": window.total_seconds()}},
            "point": {"id": camera.id, "name": camera.name, "tier": str(camera.tier)},
        }
        now = self.clock()
        with self.catalog.session() as session:
            incident = IncidentRow(category=entry.category, subcategory=entry.subcategory,
                                   gbt31000_code=gbt31000_code(entry.category, entry.subcategory), grid=camera.grid,
                                   camera_id=camera.id, occurred_at=at, kind=observation.kind,
                                   summary=f"{camera.name}: {what} ({entry.category}/{entry.subcategory})",
                                   details=json.dumps(details, ensure_ascii=False), state=str(State.REPORTED),
                                   created_at=now)
            session.add(incident)
            session.flush()
            session.add(IncidentStep(incident_id=incident.id, state=str(State.REPORTED), at=now, actor="system",
                                     note=f"识别命中：{what}", assignee=""))
            roles = self.settings.recognition.routing_roles
            members = [m for m in session.scalars(select(TeamMemberRow).where(TeamMemberRow.grid == camera.grid))
                       if m.role in roles]
            members.sort(key=lambda m: (roles.index(m.role), m.id))
            for rank, member in enumerate(members, start=1):
                session.add(IncidentRecipient(incident_id=incident.id, member_id=member.id, name=member.name,
                                              role=member.role, rank=rank))
            channels = (["mqtt"] if self.settings.recognition.mqtt else []) + [
                f"webhook:{hook.url}" for hook in self.settings.recognition.webhooks]
            for channel in channels:
                session.add(Delivery(incident_id=incident.id, channel=channel, attempts=0, next_attempt_at=now,
                                     last_error=""))
            session.commit()
        log.warning("incident %d reported in grid %s: %s", incident.id, camera.grid, incident.summary)
        return incident
