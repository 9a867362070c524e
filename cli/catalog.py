"""``jifang catalog segments|gaps``: what was recorded and every interval without video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from jifang.cli.common import EXIT_OK, open_catalog


def cmd_catalog(args: argparse.Namespace) -> int:
    _settings, catalog = open_catalog(args.config)
    if args.what == "segments":
        rows = [{"camera": r.camera_id, "key": r.key, "start": r.start_at.isoformat(), "end": r.end_at.isoformat(),
                 "bytes": r.bytes, "sha256": r.sha256, "tier": r.tier, "retain_until": r.retain_until.isoformat(),
                 "uploaded_at": r.uploaded_at.isoformat() if r.uploaded_at else None}
                for r in catalog.segments(args.camera)]
        columns = ["camera", "start", "end", "bytes", "retain_until", "uploaded_at", "key"]
    else:
        rows = [{"camera": r.camera_id, "start": r.start_at.isoformat(),
                 "end": r.end_at.isoformat() if r.end_at else None, "cause": r.cause, "detail": r.detail}
                for r in catalog.gaps(args.camera)]
        columns = ["camera", "start", "end", "cause", "detail"]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
    else:
        print("\t".join(columns))
        for row in rows:
            print("\t".join(str(row[c]) if row[c] is not None else "-" for c in columns))
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    catalog = sub.add_parser("catalog", help="read the segment catalog")
    catalog.add_argument("what", choices=["segments", "gaps"])
    catalog.add_argument("--config", required=True, type=Path)
    catalog.add_argument("--camera", help="only this camera ID")
    catalog.add_argument("--json", action="store_true", help="print JSON")
    catalog.set_defaults(func=cmd_catalog)
