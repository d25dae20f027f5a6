"""The `acechart` command: one subcommand per entry point, settings from env and flags.

Each subcommand registers its own flags in `build_parser` and runs from a
function taking the parsed arguments; flags override `ACECHART_*` variables
and both go through `Settings`, so they are validated in one place. Logging is
configured here and nowhere else.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from acechart.errors import ConfigError
from acechart.settings import Settings

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acechart",
        description="A fast chart-data proxy and cache in front of the ACE IoT API.",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging threshold (default INFO)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    simulate = commands.add_parser(
        "simulate",
        help="serve an ACE-compatible API over generated data",
        description=(
            "Serve the ACE API simulator. With no ACECHART_SIMULATOR_TOKENS, the token "
            "'demo-token' reads every site. Mode, sites, faults and latency come from "
            "ACECHART_SIMULATOR_*."
        ),
    )
    simulate.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    simulate.add_argument("--port", type=int, help="port to listen on (default 8081)")
    simulate.add_argument("--seed", type=int, help="seed of the generated data (default 1)")
    simulate.add_argument(
        "--mode",
        choices=["realistic", "idealised"],
        help="the API as it behaves in the field (default) or as a client would wish",
    )
    simulate.set_defaults(run=_simulate)

    serve = commands.add_parser(
        "serve",
        help="serve the chart-data API",
        description=(
            "Serve the API on the embedded defaults: SQLite and a local object store under "
            "the data directory. Every setting also comes from its ACECHART_* variable."
        ),
    )
    serve.add_argument("--host", help="interface to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default 8080)")
    serve.add_argument("--origin", help="base URL of the ACE API (ACECHART_ORIGIN_URL)")
    serve.add_argument(
        "--data-dir", help="directory of the database and objects (ACECHART_DATA_DIR)"
    )
    serve.set_defaults(run=_serve)

    demo = commands.add_parser(
        "demo",
        help="run the simulator and the service together, with a dashboard",
        description=(
            "Start the ACE simulator and the service on local ports and print the dashboard "
            "URL, a curl command and the demo token (ACECHART_DEMO_TOKEN, default demo-token)."
        ),
    )
    demo.add_argument("--host", help="interface of both servers (default 127.0.0.1)")
    demo.add_argument("--port", type=int, help="port of the service (default 8080)")
    demo.add_argument("--origin-port", type=int, help="port of the simulator (default 8081)")
    demo.add_argument(
        "--data-dir", help="keep the cache here (default: a temporary directory, removed on exit)"
    )
    demo.set_defaults(run=_demo)
    return parser


def _overrides(args: argparse.Namespace, mapping: dict[str, str]) -> dict[str, Any]:
    """Settings overrides from the flags that were given (flag name -> setting name)."""
    values = vars(args)
    return {setting: values[flag] for flag, setting in mapping.items() if values[flag] is not None}


def _simulate(args: argparse.Namespace) -> int:
    from aiohttp import web

    from acechart.simulator.app import DEMO_TOKEN, SimulatorConfig, create_simulator_app
    from acechart.simulator.settings import SimulatorSettings

    settings = SimulatorSettings.from_env(
        **_overrides(args, {"host": "host", "port": "port", "seed": "seed", "mode": "mode"})
    )
    config = SimulatorConfig.from_settings(settings)
    app = create_simulator_app(config)
    host, port = settings.host, settings.port
    tokens = "configured tokens" if config.tokens else f"token {DEMO_TOKEN!r}"
    logger.info(
        "ACE simulator on http://%s:%d serving %s (%s, %s API)",
        host,
        port,
        ", ".join(config.sites),
        tokens,
        config.mode,
    )
    web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from acechart.server import create_app
    from acechart.server.requestlog import configure_logging
    from acechart.server.runner import run

    settings = Settings.from_env(
        **_overrides(
            args,
            {
                "host": "server_host",
                "port": "server_port",
                "origin": "origin_url",
                "data_dir": "data_dir",
            },
        )
    )
    configure_logging(settings.log_format)
    logger.info("acechart serving on http://%s:%d", settings.server_host, settings.server_port)
    # Served through acechart's runner: what aiohttp refuses before routing (a request
    # line past ACECHART_SERVER_MAX_LINE_BYTES, ...) is answered in JSON too.
    run(create_app(settings), host=settings.server_host, port=settings.server_port)
    return 0


def _demo(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from acechart.demo import run_demo
    from acechart.server.requestlog import configure_logging
    from acechart.simulator.settings import SimulatorSettings

    overrides = _overrides(args, {"host": "server_host", "port": "server_port"})
    if "ACECHART_LOG_FORMAT" not in os.environ:
        overrides["log_format"] = "text"  # a person reads this terminal, not a log shipper
    settings = Settings.from_env(**overrides)
    simulator = SimulatorSettings.from_env(
        **_overrides(args, {"host": "host", "origin_port": "port"})
    )
    configure_logging(settings.log_format)
    asyncio.run(run_demo(settings, simulator, data_dir=args.data_dir))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run: Command = args.run
    try:
        return run(args)
    except ConfigError as exc:
        print(f"acechart: invalid settings: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
