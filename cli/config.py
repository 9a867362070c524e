"""``jifang config check``: validate a configuration file."""

from __future__ import annotations

import argparse
from pathlib import Path

from jifang.cli.common import EXIT_OK

from jifang.config import load_settings


def cmd_config_check(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    print(f"{args.config}: valid ({len(settings.grids)} grids, {len(settings.cameras)} cameras, "
          f"{settings.storage.kind} storage)")
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    config = sub.add_parser("config", help="configuration").add_subparsers(dest="config_command", required=True)
    check = config.add_parser("check", help="validate a configuration file")
    check.add_argument("config", type=Path)
    check.set_defaults(func=cmd_config_check)
