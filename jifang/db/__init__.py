"""The catalog database: SQLAlchemy 2 models, Alembic migrations and the segment/gap catalog."""

from jifang.db.catalog import Catalog
from jifang.db.models import GapRow, SegmentRow

__all__ = ["Catalog", "GapRow", "SegmentRow"]
