"""The ``jifang`` command: one entry point, a sub-command per job; each group lives in its own module.

Exit codes: 0 success, 1 a finding (e.g. non-compliant), 2 bad input or an unusable environment.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from jifang.cli import catalog, config, dashboard, demo, edge, gb28181, recognition, registry, retention, sim
from jifang.cli.common import EXIT_BAD_INPUT, setup_logging

from jifang.errors import JifangError

GROUPS = (demo, edge, sim, config, retention, registry, recognition, dashboard, catalog, gb28181)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jifang", description="video-surveillance edge and retention management "
                                     "(DB3310/T 55-2019)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except JifangError as exc:
        print(f"jifang: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
