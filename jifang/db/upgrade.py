"""``python -m jifang.db.upgrade``: bring a catalog's schema to the newest revision, then exit.

The child process of ``Catalog.migrate(isolated=True)``: the database URL comes in the environment
(``JIFANG_MIGRATE_DATABASE_URL``), an error goes out as one line on stderr with exit status 2.
"""

from __future__ import annotations

import os
import sys

from jifang.db.catalog import MIGRATE_URL_ENV, Catalog
from jifang.errors import CatalogError


def main() -> int:
    url = os.environ.pop(MIGRATE_URL_ENV, "")
    if not url:
        print(f"{MIGRATE_URL_ENV} is not set: this is Catalog.migrate(isolated=True)'s child", file=sys.stderr)
        return 2
    try:
        catalog = Catalog(url)
        catalog.migrate()
        catalog.dispose()
    except CatalogError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
