"""Custody rows: which edge agent held which camera when, written by the agent as it happens (start, a heartbeat
every few seconds, clean stop). The retention audit reads them as the evidence for ``agent_offline`` and
``handover`` gaps; an agent that is killed leaves its last heartbeat."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from jifang.db.catalog import Catalog
from jifang.db.models import CustodyRow

AGENT = "*"  # the agent's own row: it was running
HEARTBEAT_SECONDS = 5.0  # how often a running agent renews its rows; a dead one's custody ends one period later


def begin(catalog: Catalog, agent_id: str, camera_id: str, at: datetime) -> None:
    """``agent_id`` holds ``camera_id`` from ``at`` (idempotent while a row is open)."""
    with catalog.session() as session:
        open_row = session.scalar(select(CustodyRow.id).where(
            CustodyRow.agent_id == agent_id, CustodyRow.camera_id == camera_id, CustodyRow.ended_at.is_(None)))
        if open_row is None:
            session.add(CustodyRow(camera_id=camera_id, agent_id=agent_id, started_at=at, alive_at=at))
            session.commit()


def end(catalog: Catalog, agent_id: str, camera_id: str | None, at: datetime) -> None:
    """The agent stopped holding ``camera_id`` (None: everything, the agent stops) at ``at``."""
    with catalog.session() as session:
        query = update(CustodyRow).where(CustodyRow.agent_id == agent_id, CustodyRow.ended_at.is_(None))
        if camera_id is not None:
            query = query.where(CustodyRow.camera_id == camera_id)
        session.execute(query.values(ended_at=at, alive_at=at))
        session.commit()


def close_lapsed(catalog: Catalog, agent_id: str) -> None:
    """At start: rows this agent left open when it died end one heartbeat period after its last heartbeat (a clean
    stop writes ``ended_at == alive_at``; a lapsed row keeps ``ended_at > alive_at``)."""
    with catalog.session() as session:
        for row in session.scalars(select(CustodyRow).where(CustodyRow.agent_id == agent_id,
                                                            CustodyRow.ended_at.is_(None))):
            row.ended_at = row.alive_at + timedelta(seconds=HEARTBEAT_SECONDS)
        session.commit()


def beat(catalog: Catalog, agent_id: str, at: datetime) -> None:
    """The agent is alive and still holds its open rows at ``at``."""
    with catalog.session() as session:
        session.execute(update(CustodyRow).where(CustodyRow.agent_id == agent_id, CustodyRow.ended_at.is_(None))
                        .values(alive_at=at))
        session.commit()
