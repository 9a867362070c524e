"""``jifang edge run``: the edge agent."""

from __future__ import annotations

import argparse
from pathlib import Path

from jifang.cli import gb28181
from jifang.cli.common import EXIT_OK
from jifang.edge.agent import EdgeAgent

from jifang.config import load_settings
from jifang.memory import limit_malloc_arenas
from jifang.supervision import stop_on_signals


def cmd_edge_run(args: argparse.Namespace) -> int:
    limit_malloc_arenas()  # before the agent starts its threads (two per camera)
    settings = load_settings(args.config)
    agent = EdgeAgent(settings, preflight=not args.no_check, agent_id=args.agent_id)
    agent.open()
    if agent.settings.gb28181.enabled:
        platform = gb28181.attach_to_agent(agent)
        print(f"gb28181: sip {settings.gb28181.host}:{platform.sip.port} (UDP and TCP)", flush=True)
    port = agent.serve_metrics(args.metrics_host, args.metrics_port)
    print(f"metrics: http://{args.metrics_host or settings.metrics.host}:{port}/metrics", flush=True)
    agent.run(stop_on_signals())
    return EXIT_OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    edge = sub.add_parser("edge", help="edge agent").add_subparsers(dest="edge_command", required=True)
    run = edge.add_parser("run", help="record every camera of the configuration until SIGTERM",
                          description="Record every enabled camera into the object store, with retention locks, "
                          "until SIGTERM/SIGINT; then close the current segments and upload the spool.")
    run.add_argument("--config", required=True, type=Path, help="configuration file (YAML)")
    run.add_argument("--metrics-port", type=int, default=None, help="Prometheus metrics port (default from config)")
    run.add_argument("--metrics-host", default=None, help="metrics bind address (default from config)")
    run.add_argument("--no-check", action="store_true", help="skip the start-up stream check of each camera")
    run.add_argument("--agent-id", help="name of this agent in the fleet (default: $JIFANG_AGENT_ID, else host:pid)")
    run.set_defaults(func=cmd_edge_run)
