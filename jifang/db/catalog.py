"""The segment catalog: one row per recorded segment and per gap, on SQLite or PostgreSQL."""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import bindparam, create_engine, delete, event, insert, select, text, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from jifang.db.models import CoverageDay, CoverageSpan, GapRow, LegalHold, SegmentRow
from jifang.domain import GapCause, Segment
from jifang.errors import CatalogError, ObjectConflictError

SPAN_TOLERANCE = timedelta(seconds=2)  # segments closer than this are one contiguous span
MIGRATION_LOCK_ID = 0x6A6966616E67  # "jifang": serialises migrations across processes on PostgreSQL


MIGRATE_URL_ENV = "JIFANG_MIGRATE_DATABASE_URL"  # how an isolated migration hands the URL to its child
MIGRATE_TIMEOUT_SECONDS = 600
MIGRATIONS = Path(__file__).with_name("migrations") / "versions"
_REVISION = re.compile(r'^(down_revision|revision)\s*=\s*(?:"([^"]*)"|None)', re.MULTILINE)


@functools.cache
def head_revision() -> str:
    """The newest migration's revision, read from the migration files' text (importing them needs Alembic):
    the one revision that no other names as its down_revision."""
    revisions, parents = set(), set()
    for path in MIGRATIONS.glob("*.py"):
        fields = {name: value for name, value in _REVISION.findall(path.read_text(encoding="utf-8"))}
        if "revision" in fields:
            revisions.add(fields["revision"])
            if fields.get("down_revision"):
                parents.add(fields["down_revision"])
    heads = revisions - parents
    if len(heads) != 1:
        raise CatalogError(f"the migrations in {MIGRATIONS} have {len(heads)} heads, not one: {sorted(heads)}")
    return heads.pop()


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


class _SegmentSQL:
    """The statements run for every segment (catalogue, upload), built once: building a statement anew costs
    SQLAlchemy about 0.3 ms, four times what running it on SQLite does (measured)."""

    _segments, _spans, _days, _holds = (SegmentRow.__table__, CoverageSpan.__table__, CoverageDay.__table__,
                                        LegalHold.__table__)
    sha256_of_key = select(_segments.c.sha256).where(_segments.c.key == bindparam("segment_key"))  # None: absent
    insert_segment = insert(_segments)
    mark_uploaded = (update(_segments).where(_segments.c.key == bindparam("segment_key"),
                                             _segments.c.uploaded_at.is_(None))
                     .values(uploaded_at=bindparam("at")))
    touching_spans = (select(_spans.c.id, _spans.c.start_at, _spans.c.end_at, _spans.c.segments, _spans.c.bytes)
                      .where(_spans.c.camera_id == bindparam("camera"), _spans.c.end_at >= bindparam("from_end"),
                             _spans.c.start_at <= bindparam("to_start"))
                      .order_by(_spans.c.start_at))
    insert_span = insert(_spans)
    extend_span = (update(_spans).where(_spans.c.id == bindparam("span_id"))
                   .values(start_at=bindparam("new_start"), end_at=bindparam("new_end"),
                           segments=bindparam("new_segments"), bytes=bindparam("new_bytes")))
    delete_span = delete(_spans).where(_spans.c.id == bindparam("span_id"))
    add_to_day = (update(_days).where(_days.c.camera_id == bindparam("camera"), _days.c.day == bindparam("on_day"))
                  .values(covered_seconds=_days.c.covered_seconds + bindparam("add_seconds"),
                          bytes=_days.c.bytes + bindparam("add_bytes"),
                          segments=_days.c.segments + bindparam("add_segments")))
    insert_day = insert(_days)
    active_hold_over = (select(_holds.c.id).where(_holds.c.camera_id == bindparam("camera"),
                                                  _holds.c.released_at.is_(None),
                                                  _holds.c.start_at < bindparam("to_start"),
                                                  _holds.c.end_at > bindparam("from_end")).limit(1))


class Catalog:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = _make_engine(url)
        except Exception as exc:  # bad URL, missing driver
            raise CatalogError(f"database URL is unusable: {type(exc).__name__}") from None
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._add_lock = threading.Lock()

    def schema_is_current(self) -> bool:
        """Whether the database already has the newest revision (one query; False when it has none yet).
        CatalogError when the database does not answer."""
        try:
            connection = self.engine.connect()
        except OperationalError as exc:
            raise self._unreachable(exc) from None
        with connection:
            try:
                versions = {row[0] for row in connection.execute(text("SELECT version_num FROM alembic_version"))}
            except DBAPIError:  # no version table: a new database
                return False
        return versions == {head_revision()}

    def migrate(self, isolated: bool = False) -> None:
        """Bring the schema to the newest revision (Alembic), one process at a time.

        Alembic (with Mako and Pygments) would stay in memory for the rest of the process, 12 MiB: it is loaded
        only when there is something to upgrade, and with ``isolated`` (the edge agent, which runs for months)
        in a child process, so that even an upgrade leaves the agent lean."""
        parsed = make_url(self.url)
        in_memory = parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")
        if parsed.get_backend_name() == "sqlite" and not in_memory:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
        if self.schema_is_current():
            return
        if isolated and not in_memory:
            self._migrate_in_child()
            return
        # deferred: Alembic is about a third of the CLI's import time and only migrating needs it
        from alembic import command
        from alembic.config import Config

        config = Config(str(Path(__file__).with_name("alembic.ini")))
        try:
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": MIGRATION_LOCK_ID})
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except OperationalError as exc:
            raise self._unreachable(exc) from None

    def _unreachable(self, exc: OperationalError) -> CatalogError:
        safe = make_url(self.url).render_as_string(hide_password=True)
        return CatalogError(f"database {safe} unreachable: {str(exc.orig).strip().splitlines()[0]}")

    def _migrate_in_child(self) -> None:
        # the URL (it may hold a password) goes by the environment, which only this user can read, not by argv
        env = {**os.environ, MIGRATE_URL_ENV: self.url}
        result = subprocess.run([sys.executable, "-m", "jifang.db.upgrade"], env=env, capture_output=True,
                                text=True, timeout=MIGRATE_TIMEOUT_SECONDS, check=False)
        if result.returncode != 0:
            lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
            raise CatalogError(lines[-1] if lines else f"schema upgrade failed (exit {result.returncode})")

    def session(self) -> Session:
        return self._sessions()

    def connect(self) -> Connection:
        """A connection for prepared statements (``with catalog.connect() as connection``)."""
        return self.engine.connect()

    def begin(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction, committed when the block ends (rolled back on an exception)."""
        return self.engine.begin()

    # segments

    def add_segment(self, segment: Segment, recorded_at: datetime) -> bool:
        """Catalog a segment; a second call with the same key and sha256 is a no-op (returns False).

        Serialised within the process: the recorder and the uploader both catalog from the spool, and two
        concurrent inserts would race on the camera's coverage rows (an IntegrityError that is not a duplicate).
        Prepared SQL statements (``_SegmentSQL``), not ORM objects: this runs for every segment of every camera."""
        with self._add_lock:
            try:
                with self.begin() as connection:
                    existing = connection.scalar(_SegmentSQL.sha256_of_key, {"segment_key": segment.key})
                    if existing is not None:
                        if existing != segment.sha256:
                            raise ObjectConflictError(f"{segment.key}: catalogued with another sha256")
                        return False
                    connection.execute(_SegmentSQL.insert_segment, {
                        "camera_id": segment.camera_id, "key": segment.key, "start_at": segment.capture_start,
                        "end_at": segment.capture_end, "bytes": segment.size, "sha256": segment.sha256,
                        "tier": str(segment.tier), "grid": segment.grid, "retain_until": segment.retain_until,
                        "recorded_at": recorded_at,
                    })
                    self._update_rollups(connection, segment)
            except IntegrityError:
                with self.connect() as connection:
                    if connection.scalar(_SegmentSQL.sha256_of_key, {"segment_key": segment.key}) is None:
                        raise  # not a duplicate: a rollup row raced another process; the caller retries
                return False  # another process catalogued it between our check and insert
        return True

    @staticmethod
    def _update_rollups(connection: Connection, segment: Segment) -> None:
        """Extend (or start, or bridge) the camera's coverage span and add the segment to its day totals."""
        touching = connection.execute(_SegmentSQL.touching_spans, {
            "camera": segment.camera_id, "from_end": segment.capture_start - SPAN_TOLERANCE,
            "to_start": segment.capture_end + SPAN_TOLERANCE,
        }).all()
        if not touching:
            connection.execute(_SegmentSQL.insert_span, {
                "camera_id": segment.camera_id, "start_at": segment.capture_start, "end_at": segment.capture_end,
                "segments": 1, "bytes": segment.size})
        else:
            connection.execute(_SegmentSQL.extend_span, {
                "span_id": touching[0].id,
                "new_start": min([segment.capture_start, *(t.start_at for t in touching)]),
                "new_end": max([segment.capture_end, *(t.end_at for t in touching)]),
                "new_segments": 1 + sum(t.segments for t in touching),
                "new_bytes": segment.size + sum(t.bytes for t in touching),
            })
            if len(touching) > 1:  # the segment bridged a hole between spans: they become one
                connection.execute(_SegmentSQL.delete_span, [{"span_id": t.id} for t in touching[1:]])
        start, end = segment.capture_start.astimezone(UTC), segment.capture_end.astimezone(UTC)
        duration = (end - start).total_seconds() or 1.0
        cursor = start
        while cursor < end:
            day = cursor.date()
            next_midnight = datetime.combine(day, datetime.min.time(), cursor.tzinfo) + timedelta(days=1)
            piece_end = min(next_midnight, end)
            seconds = (piece_end - cursor).total_seconds()
            totals = {"camera": segment.camera_id, "on_day": day, "add_seconds": seconds,
                      "add_bytes": round(segment.size * seconds / duration), "add_segments": int(cursor == start)}
            if connection.execute(_SegmentSQL.add_to_day, totals).rowcount == 0:  # the camera's first of the day
                connection.execute(_SegmentSQL.insert_day, {
                    "camera_id": segment.camera_id, "day": day, "covered_seconds": seconds,
                    "bytes": totals["add_bytes"], "segments": totals["add_segments"]})
            cursor = piece_end

    def spans(self, camera_id: str, start: datetime, end: datetime) -> list[CoverageSpan]:
        with self.session() as session:
            return list(session.scalars(
                select(CoverageSpan).where(CoverageSpan.camera_id == camera_id, CoverageSpan.end_at > start,
                                           CoverageSpan.start_at < end).order_by(CoverageSpan.start_at)
            ))

    def held_over(self, camera_id: str, start: datetime, end: datetime) -> bool:
        """Whether an active legal hold covers any part of [start, end) for the camera."""
        with self.connect() as connection:
            return connection.scalar(_SegmentSQL.active_hold_over,
                                     {"camera": camera_id, "from_end": start, "to_start": end}) is not None

    def mark_held(self, key: str) -> None:
        with self.session() as session:
            row = session.scalar(select(SegmentRow).where(SegmentRow.key == key))
            if row is not None and not row.held:
                row.held = True
                session.commit()

    def mark_uploaded(self, key: str, at: datetime) -> None:
        """Record the upload time of a catalogued segment (the first one stands); one UPDATE per segment."""
        with self.begin() as connection:
            marked = connection.execute(_SegmentSQL.mark_uploaded, {"segment_key": key, "at": at})
            if marked.rowcount == 0 and connection.scalar(_SegmentSQL.sha256_of_key, {"segment_key": key}) is None:
                raise CatalogError(f"{key}: not in the catalog")

    def segment(self, key: str) -> SegmentRow | None:
        with self.session() as session:
            return session.scalar(select(SegmentRow).where(SegmentRow.key == key))

    def segments(self, camera_id: str | None = None) -> list[SegmentRow]:
        with self.session() as session:
            query = select(SegmentRow).order_by(SegmentRow.camera_id, SegmentRow.start_at)
            if camera_id:
                query = query.where(SegmentRow.camera_id == camera_id)
            return list(session.scalars(query))

    def last_segment_end(self, camera_id: str) -> datetime | None:
        with self.session() as session:
            return session.scalar(
                select(SegmentRow.end_at).where(SegmentRow.camera_id == camera_id)
                .order_by(SegmentRow.end_at.desc()).limit(1)
            )

    # gaps

    def open_gap(self, camera_id: str, start: datetime, cause: GapCause, detail: str = "") -> None:
        """Record that ``camera_id`` has had no video since ``start``, unless a gap is already open."""
        with self.session() as session:
            if self._open_gap(session, camera_id) is None:
                session.add(GapRow(camera_id=camera_id, start_at=start, cause=str(cause), detail=detail[:500]))
                session.commit()

    def has_open_gap(self, camera_id: str) -> bool:
        with self.session() as session:
            return self._open_gap(session, camera_id) is not None

    def update_open_gap(self, camera_id: str, detail: str) -> None:
        with self.session() as session:
            gap = self._open_gap(session, camera_id)
            if gap is not None and gap.detail != detail[:500]:
                gap.detail = detail[:500]
                session.commit()

    def close_gap(self, camera_id: str, end: datetime) -> GapRow | None:
        """Close the camera's open gap at ``end`` (video is back). A gap that turned out empty is removed."""
        with self.session() as session:
            gap = self._open_gap(session, camera_id)
            if gap is None:
                return None
            if end <= gap.start_at:
                session.delete(gap)
                session.commit()
                return None
            gap.end_at = end
            session.commit()
            return gap

    def add_gap(self, camera_id: str, start: datetime, end: datetime, cause: GapCause, detail: str = "") -> None:
        with self.session() as session:
            session.add(GapRow(camera_id=camera_id, start_at=start, end_at=end, cause=str(cause), detail=detail[:500]))
            session.commit()

    def gaps(self, camera_id: str | None = None) -> list[GapRow]:
        with self.session() as session:
            query = select(GapRow).order_by(GapRow.camera_id, GapRow.start_at)
            if camera_id:
                query = query.where(GapRow.camera_id == camera_id)
            return list(session.scalars(query))

    @staticmethod
    def _open_gap(session: Session, camera_id: str) -> GapRow | None:
        return session.scalar(
            select(GapRow).where(GapRow.camera_id == camera_id, GapRow.end_at.is_(None)).limit(1)
        )

    def dispose(self) -> None:
        self.engine.dispose()
