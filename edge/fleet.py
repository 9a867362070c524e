"""Edge scale-out: several agents share the cameras through leases in the catalog database.

Each agent heartbeats, counts the live agents of its site, and holds about its fair share of the cameras
(ceil(cameras / agents)). A lease is valid for ``lease_seconds`` and renewed every quarter of that; an agent
that dies stops renewing, and the others take its cameras once the leases expire (within two lease periods
in all). An agent that cannot renew (database unreachable) stops recording a camera when its lease runs out,
so no camera is ever recorded by two agents. Ownership decisions are pure (``plan``); the member applies them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update

from jifang.db import Catalog, leases
from jifang.db.models import AgentRow, CameraLease
from jifang.supervision import Worker, every

log = logging.getLogger("jifang.fleet")


@dataclass(frozen=True)
class Plan:
    take: list[str]
    release: list[str]


def plan(cameras: list[str], mine: set[str], free: list[str], agents: int) -> Plan:
    """Which free cameras to take and which held ones to hand back, to converge on a fair share."""
    share = math.ceil(len(cameras) / max(1, agents))
    if len(mine) > share:  # hand back one at a time: others pick them up, recording moves gradually
        return Plan(take=[], release=sorted(mine)[share:][:1])
    return Plan(take=sorted(free)[: share - len(mine)], release=[])


class FleetMember:
    def __init__(self, catalog: Catalog, agent_id: str, site: str, cameras: list[str], lease_seconds: float,
                 clock: Callable[[], datetime], start: Callable[[str], None], stop: Callable[[str], None]) -> None:
        self.catalog = catalog
        self.agent_id = agent_id
        self.site = site
        self.cameras = cameras
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock
        self._start, self._stop_camera = start, stop
        self.owned: dict[str, datetime] = {}  # camera -> until when our lease is known valid
        self._worker = Worker("fleet", every(self.lease.total_seconds() / 4, self._tick, log, "fleet step"))

    def start(self) -> None:
        self.step()
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()
        for camera in list(self.owned):
            self._stop_camera(camera)
        try:  # hand everything back at once so the others need not wait for expiry
            with self.catalog.session() as session:
                session.execute(delete(CameraLease).where(CameraLease.agent_id == self.agent_id))
                session.execute(delete(AgentRow).where(AgentRow.agent_id == self.agent_id))
                session.commit()
        except Exception:
            log.exception("could not release the camera leases")
        self.owned.clear()

    def _tick(self) -> None:
        try:
            self.step()
        except Exception:
            log.exception("fleet step failed")
            self._expire_unconfirmed()

    def _expire_unconfirmed(self) -> None:
        now = self.clock()
        for camera, until in list(self.owned.items()):
            if until <= now:
                log.warning("camera %s: lease could not be renewed and expired; stopping its recorder", camera)
                self.owned.pop(camera)
                self._stop_camera(camera)

    def step(self) -> None:
        now = self.clock()
        until = now + self.lease
        with self.catalog.session() as session:
            heartbeat = session.get(AgentRow, self.agent_id)
            if heartbeat is None:
                session.add(AgentRow(agent_id=self.agent_id, site=self.site, heartbeat_at=now))
            else:
                heartbeat.heartbeat_at = now
            session.flush()
            agents = session.scalar(select(func.count()).select_from(AgentRow).where(
                AgentRow.site == self.site, AgentRow.heartbeat_at > now - self.lease))
            session.execute(update(CameraLease).where(CameraLease.agent_id == self.agent_id,
                                                      CameraLease.camera_id.in_(self.cameras))
                            .values(expires_at=until))
            leases = {row.camera_id: row for row in session.scalars(
                select(CameraLease).where(CameraLease.camera_id.in_(self.cameras)))}
            session.commit()
        mine = {c for c, row in leases.items() if row.agent_id == self.agent_id}
        for camera in list(self.owned):
            if camera not in mine:
                log.warning("camera %s: lease taken by another agent; stopping its recorder", camera)
                self.owned.pop(camera)
                self._stop_camera(camera)
        for camera in mine:
            if camera not in self.owned:  # ours from before a restart of this agent
                self.owned[camera] = until
                self._start(camera)
            self.owned[camera] = until
        free = [c for c in self.cameras if c not in leases or leases[c].expires_at <= now]
        decision = plan(self.cameras, set(self.owned), free, int(agents or 1))
        for camera in decision.release:
            self._stop_camera(camera)
            self.owned.pop(camera, None)
            with self.catalog.session() as session:
                session.execute(delete(CameraLease).where(CameraLease.camera_id == camera,
                                                          CameraLease.agent_id == self.agent_id))
                session.commit()
            log.info("camera %s handed back to the fleet (rebalancing)", camera)
        for camera in decision.take:
            if self._claim(camera, now, until):
                self.owned[camera] = until
                log.info("camera %s: lease taken; recording", camera)
                self._start(camera)

    def _claim(self, camera: str, now: datetime, until: datetime) -> bool:
        return leases.take(self.catalog, CameraLease, camera, self.agent_id, now, until)
