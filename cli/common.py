"""What every command group shares: exit codes, the ``--config`` flag, and opening the catalog."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from jifang.errors import JifangError

if TYPE_CHECKING:
    from jifang.config import Settings
    from jifang.db import Catalog

EXIT_OK, EXIT_FINDING, EXIT_BAD_INPUT = 0, 1, 2


def setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def with_config(parser: argparse.ArgumentParser, required: bool = True) -> argparse.ArgumentParser:
    parser.add_argument("--config", required=required, type=Path, help="configuration file (YAML)")
    return parser


def open_catalog(config: Path | str) -> tuple[Settings, Catalog]:
    """Load the settings and open the catalog database, bringing its schema up to date."""
    # deferred: SQLAlchemy and the models are most of the CLI's start-up (about 1 s of 1.6 s on a loaded
    # 2-core machine); a command's --help or a bad argument must not pay for them
    from jifang.config import load_settings
    from jifang.db import Catalog

    settings = load_settings(config)
    catalog = Catalog(settings.database.url)
    catalog.migrate()
    return settings, catalog


def moment(text: str) -> datetime:
    """ISO 8601 date or time; a time without zone is taken as China Standard Time (UTC+8)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise JifangError(
            f"{text!r} is not an ISO 8601 date or time (e.g. 2026-11-27 or 2026-11-27T08:00:00+08:00)") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone(timedelta(hours=8)))
    return value.astimezone(UTC)
