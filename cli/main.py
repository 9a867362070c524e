"""The ``jifang`` command: one entry point, a sub-command per job; each group lives in its own module.

Exit codes: 0 success, 1 a finding (e.g. non-compliant), 2 bad input or an unusable environment.

Only the group of the command being run is imported (``jifang catalog ...`` never loads recognition or the
dashboard), so a command starts in a fraction of a second; ``jifang --help`` and a command not in
``COMMANDS`` load every group. tests/test_cli_startup.py keeps ``COMMANDS`` equal to what the groups register.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from types import ModuleType

from jifang.cli.common import EXIT_BAD_INPUT, setup_logging

from jifang.errors import JifangError

# the command-group modules of jifang.cli, in the order --help lists them
GROUPS = ("demo", "edge", "sim", "config", "retention", "registry", "recognition", "dashboard", "catalog", "gb28181")
# top-level command -> the group that registers it
COMMANDS = {
    "demo": "demo", "edge": "edge", "sim": "sim", "config": "config", "retention": "retention",
    "registry": "registry", "grid": "registry", "team": "registry", "camera": "registry", "models": "recognition",
    "recognize": "recognition", "watchlist": "recognition", "incident": "recognition", "dashboard": "dashboard",
    "user": "dashboard", "catalog": "catalog", "gb28181": "gb28181",
}


def group_module(name: str) -> ModuleType:
    return importlib.import_module(f"jifang.cli.{name}")


def command_of(argv: Sequence[str]) -> str | None:
    """The top-level command in ``argv`` (the first word that is not a global option or its value)."""
    words = iter(argv)
    for word in words:
        if word == "--log-level":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the group of the command in ``argv``, or with every group (None, help, unknown)."""
    parser = argparse.ArgumentParser(prog="jifang", description="video-surveillance edge and retention management "
                                     "(DB3310/T 55-2019)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = command_of(argv) if argv is not None else None
    for name in (COMMANDS[command],) if command in COMMANDS else GROUPS:
        group_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)
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
