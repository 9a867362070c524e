"""``jifang demo``: everything on one machine with simulated cameras."""

from __future__ import annotations

import argparse
from pathlib import Path

from jifang.demo.run import run_demo


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(Path(args.data), duration=args.duration, metrics_port=args.metrics_port)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    demo = sub.add_parser("demo", help="run everything on this machine with four simulated cameras",
                          description="Start four simulated cameras (two recorded; one with faces and one with a "
                          "plate for recognition, left out with a message when the models are not fetched) and an "
                          "edge agent on embedded defaults (SQLite, filesystem store under --data). Writes the "
                          "configuration it runs with to DATA/jifang.yaml so other commands can use --config.")
    demo.add_argument("--data", default="jifang-data", help="data folder (default ./jifang-data)")
    demo.add_argument("--for", dest="duration", type=float, default=None, metavar="SECONDS",
                      help="stop after this many seconds (default: until Ctrl-C)")
    demo.add_argument("--metrics-port", type=int, default=9108, help="metrics port (0: any free port)")
    demo.set_defaults(func=cmd_demo)
