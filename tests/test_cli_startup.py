"""The CLI loads only the command group it runs: a catalog command never imports recognition, the dashboard,
or Alembic before it migrates."""

from __future__ import annotations

import argparse
import subprocess
import sys

from jifang.cli.main import COMMANDS, GROUPS, build_parser, command_of, group_module


def test_commands_table_matches_what_the_groups_register() -> None:
    registered = {}
    for name in GROUPS:
        sub = argparse.ArgumentParser().add_subparsers()
        group_module(name).register(sub)
        registered.update(dict.fromkeys(sub.choices, name))
    assert registered == COMMANDS


def test_command_is_found_after_global_options() -> None:
    assert command_of(["--log-level", "warning", "edge", "run"]) == "edge"
    assert command_of(["--log-level=debug", "catalog", "--help"]) == "catalog"
    assert command_of(["--help"]) is None
    parser = build_parser(["catalog", "segments"])
    assert set(parser._subparsers._group_actions[0].choices) == {"catalog"}  # type: ignore[union-attr]
    assert len(build_parser(["--help"])._subparsers._group_actions[0].choices) == len(COMMANDS)  # type: ignore[union-attr]


def test_catalog_help_imports_neither_recognition_nor_dashboard() -> None:
    probe = ("import sys, contextlib, io\n"
             "from jifang.cli.main import main\n"
             "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
             "    main(['catalog', '--help'])\n"
             "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('jifang', 'alembic', 'cv2', "
             "'onnxruntime', 'numpy', 'fastapi', 'argon2'))))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    loaded = set(done.stdout.split())
    assert "jifang.cli.catalog" in loaded
    heavy = {m for m in loaded if m.startswith(("jifang.recognition", "jifang.dashboard", "jifang.demo",
                                                "jifang.edge", "alembic", "cv2", "onnxruntime", "fastapi",
                                                "argon2", "numpy"))}
    assert heavy == set()
