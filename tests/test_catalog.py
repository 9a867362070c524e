"""The segment catalog on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy

from jifang.db import Catalog
from jifang.domain import GapCause, Segment, video_key
from jifang.errors import CatalogError, ObjectConflictError
from jifang.tiers import MediaKind, Tier, retain_until

CAMERA = "33100200001320000001"
T0 = datetime(2026, 11, 27, 8, 0, 0, 123456, tzinfo=UTC)


def segment(start: datetime, sha: str = "ab" * 32, seconds: float = 10) -> Segment:
    end = start + timedelta(seconds=seconds)
    return Segment(CAMERA, video_key(CAMERA, start), start, end, 1000, sha, Tier.KEY, "331002001001001",
                   retain_until(end, Tier.KEY, MediaKind.VIDEO))


def test_migrations_create_the_schema_once(db_url: str) -> None:
    catalog = Catalog(db_url)
    catalog.migrate()
    catalog.migrate()  # a second start finds the schema current
    tables = set(sqlalchemy.inspect(catalog.engine).get_table_names())
    assert {"segments", "gaps", "alembic_version"} <= tables
    catalog.dispose()


def test_a_current_schema_is_recognised_without_loading_alembic(db_url: str) -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from jifang.db import catalog as catalog_module

    alembic_heads = ScriptDirectory.from_config(
        Config(str(Path(catalog_module.__file__).with_name("alembic.ini")))).get_heads()
    assert [catalog_module.head_revision()] == alembic_heads  # the text reading agrees with Alembic's own
    catalog = Catalog(db_url)
    assert not catalog.schema_is_current()  # a new database: migrate() runs Alembic
    catalog.migrate()
    assert catalog.schema_is_current()
    catalog.dispose()
    # a second process (an agent's start) on the migrated database never imports Alembic
    code = ("import sys; from jifang.db import Catalog; c = Catalog(sys.argv[1]); c.migrate(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako', 'pygments')))")
    out = subprocess.run([sys.executable, "-c", code, db_url], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_isolated_migration_upgrades_in_a_child_and_leaves_the_caller_without_alembic(tmp_path: Path) -> None:
    # what the edge agent does: Alembic runs in a child process, even on a database that needs the upgrade
    url = f"sqlite:///{tmp_path / 'new' / 'catalog.db'}"  # its folder does not exist yet
    code = ("import sys; from jifang.db import Catalog; c = Catalog(sys.argv[1]); c.migrate(isolated=True); "
            "print(c.schema_is_current(), sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako')))")
    out = subprocess.run([sys.executable, "-c", code, url], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True []"
    assert {"segments", "gaps"} <= set(sqlalchemy.inspect(Catalog(url).engine).get_table_names())


def test_segments_round_trip_with_exact_utc_times(db_url: str) -> None:
    catalog = Catalog(db_url)
    catalog.migrate()
    first, second = segment(T0), segment(T0 + timedelta(seconds=10))
    assert catalog.add_segment(first, recorded_at=T0) is True
    assert catalog.add_segment(first, recorded_at=T0) is False  # idempotent
    catalog.add_segment(second, recorded_at=T0)
    rows = catalog.segments(CAMERA)
    assert [r.start_at for r in rows] == [first.capture_start, second.capture_start]
    assert rows[0].start_at.tzinfo is not None and rows[0].start_at.microsecond == 123456
    assert rows[0].retain_until == first.retain_until
    assert rows[0].uploaded_at is None
    catalog.mark_uploaded(first.key, T0 + timedelta(seconds=12))
    assert catalog.segment(first.key).uploaded_at == T0 + timedelta(seconds=12)
    assert catalog.last_segment_end(CAMERA) == second.capture_end
    with pytest.raises(ObjectConflictError):
        catalog.add_segment(segment(T0, sha="cd" * 32), recorded_at=T0)
    catalog.dispose()


def test_gap_ledger_open_update_close(db_url: str) -> None:
    catalog = Catalog(db_url)
    catalog.migrate()
    catalog.open_gap(CAMERA, T0, GapCause.CAMERA_OFFLINE, "camera unreachable")
    catalog.open_gap(CAMERA, T0 + timedelta(seconds=5), GapCause.CAMERA_OFFLINE, "again")  # stays one gap
    catalog.update_open_gap(CAMERA, "RTSP 401 unauthorized")
    closed = catalog.close_gap(CAMERA, T0 + timedelta(seconds=30))
    assert closed is not None
    gaps = catalog.gaps(CAMERA)
    assert len(gaps) == 1
    assert (gaps[0].start_at, gaps[0].end_at, gaps[0].cause, gaps[0].detail) == (
        T0, T0 + timedelta(seconds=30), "camera_offline", "RTSP 401 unauthorized")
    # a gap closed before it began (video resumed seamlessly) leaves no row
    catalog.open_gap(CAMERA, T0 + timedelta(seconds=60), GapCause.CAMERA_OFFLINE)
    assert catalog.close_gap(CAMERA, T0 + timedelta(seconds=60)) is None
    assert len(catalog.gaps(CAMERA)) == 1
    catalog.dispose()


def test_unreachable_database_hides_password() -> None:
    catalog = Catalog("postgresql+psycopg2://jifang:topsecret@127.0.0.1:1/none")
    for isolated in (False, True):  # the edge agent's migration says it the same way, without a child process
        with pytest.raises(CatalogError) as caught:
            catalog.migrate(isolated=isolated)
        assert "topsecret" not in str(caught.value)
        assert str(caught.value).startswith("database postgresql+psycopg2://jifang:***@127.0.0.1:1/none unreachable: ")


def test_migrations_match_the_models(db_url: str) -> None:
    """Alembic's comparison finds nothing to add: every model change came with its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from jifang.db.models import Base

    catalog = Catalog(db_url)
    catalog.migrate()
    with catalog.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        diff = [d for d in compare_metadata(context, Base.metadata)
                if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name.startswith("scheduler"))]
    assert diff == []
    catalog.dispose()
