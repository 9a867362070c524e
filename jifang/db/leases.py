"""The one lease primitive of jifang: a row naming who holds something until when. Used for the retention
scheduler's leadership and for the edge fleet's cameras. Works the same on PostgreSQL and SQLite: an
expired (or own) row is taken over with one conditional UPDATE; a missing row is inserted, and a unique-key
conflict means another process was faster."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from jifang.db.catalog import Catalog


def take(catalog: Catalog, model: Any, key: str, holder: str, now: datetime, until: datetime) -> bool:
    """Take or renew the lease ``key`` of ``model`` (columns: its primary key, ``holder`` and ``expires_at``
    mapped by the model's ``lease_columns``) for ``holder`` until ``until``; False while another holds it."""
    key_column, holder_column = model.lease_columns
    key_attr, holder_attr = getattr(model, key_column), getattr(model, holder_column)
    with catalog.session() as session:
        taken = session.execute(update(model).where(
            key_attr == key, (holder_attr == holder) | (model.expires_at <= now),
        ).values({holder_column: holder, "expires_at": until}))
        if taken.rowcount == 1:
            session.commit()
            return True
        if session.get(model, key) is not None:
            session.rollback()
            return False
        session.add(model(**{key_column: key, holder_column: holder, "expires_at": until}))
        try:
            session.commit()
            return True
        except IntegrityError:
            session.rollback()
            return False
