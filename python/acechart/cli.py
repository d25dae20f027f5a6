"""The `acechart` command: one subcommand per entry point, settings from env and flags.

Each subcommand registers its own flags in `build_parser` and runs from a
function taking the parsed arguments; flags override `ACECHART_*` variables
and both go through `Settings`, so they are validated in one place. Logging is
configured here and nowhere else.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import functools
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from acechart._core import __version__
from acechart.errors import AcechartError, ConfigError
from acechart.settings import Settings

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)

Command = Callable[[argparse.Namespace], int]


_LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def build_parser() -> argparse.ArgumentParser:
    # Common flags work before or after the subcommand: each subparser takes them too,
    # without a default of its own, so one given before the subcommand is not undone.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        default=argparse.SUPPRESS,
        choices=_LOG_LEVELS,
        help="logging threshold (default INFO)",
    )
    parser = argparse.ArgumentParser(
        prog="acechart",
        description="A fast chart-data proxy and cache in front of the ACE IoT API.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"acechart {__version__}")
    parser.set_defaults(log_level="INFO")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = functools.partial(commands.add_parser, parents=[common])

    simulate = add(
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

    serve = add(
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

    demo = add(
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

    for name, helptext in (
        ("query", "print or save the history of points (a table, CSV, JSON, Parquet, Arrow)"),
        ("export", "write points' history straight to a file, a group of points at a time"),
    ):
        cmd = add(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        cmd.add_argument("site", help="the site's name")
        cmd.add_argument("points", nargs="+", help="point names (or one comma-separated list)")
        cmd.add_argument(
            "--start", default="-1d", help="date, ISO time, epoch ms or -7d (default -1d)"
        )
        cmd.add_argument(
            "--end", default="now", help="date, ISO time, epoch ms or now (default now)"
        )
        cmd.add_argument("--interval", default="raw", help="raw, 1min, 5min, 1hr or 1day")
        cmd.add_argument("--token", help="the ACE token (default: ACECHART_TOKEN)")
        cmd.add_argument("--origin", help="base URL of the ACE API (ACECHART_ORIGIN_URL)")
        cmd.add_argument("--data-dir", help="the cache directory (ACECHART_DATA_DIR)")
        cmd.add_argument("--no-progress", action="store_true", help="draw no progress bar")
        formats = (
            ["table", "csv", "json", "parquet", "arrow"]
            if name == "query"
            else ["csv", "parquet", "arrow"]
        )
        cmd.add_argument("--format", choices=formats, default=formats[0], help="output format")
        cmd.add_argument(
            "-o", "--output", required=name == "export", help="file to write (default: stdout)"
        )
        cmd.set_defaults(run=_query if name == "query" else _export)
    return parser


#: Which flag set which setting in this run, so an error names what the user typed.
_FLAG_OF: dict[str, str] = {}


def _overrides(args: argparse.Namespace, mapping: dict[str, str]) -> dict[str, Any]:
    """Settings overrides from the flags that were given (flag name -> setting name)."""
    values = vars(args)
    given = {flag: setting for flag, setting in mapping.items() if values.get(flag) is not None}
    for flag, setting in given.items():
        _FLAG_OF[setting.upper()] = "--" + flag.replace("_", "-")
    return {setting: values[flag] for flag, setting in given.items()}


def _config_error(exc: ConfigError) -> str:
    """The error, naming the flag when the bad value came from one."""
    setting = str(exc.extra.get("setting") or "")
    for name, flag in _FLAG_OF.items():
        if setting.endswith(name):
            return f"{flag}: {exc.message} (the flag sets {setting})"
    return exc.message


class PortInUse(Exception):
    """The port a server should listen on is taken: one line for the user, no traceback."""


@contextlib.contextmanager
def _port_guard(port: int, env: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(f"port {port} is in use; pass --port or set {env}") from None


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
    with _port_guard(port, "ACECHART_SIMULATOR_PORT"):
        web.run_app(app, host=host, port=port, print=None, access_log=None)
    return 0


def _serve(args: argparse.Namespace) -> int:
    from acechart.server import create_app, malloc
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
    configure_logging(settings.log_format, settings.log_flush_s)
    malloc.tune(settings.malloc_mmap_threshold_bytes, settings.malloc_trim_threshold_bytes)
    logger.info("acechart serving on http://%s:%d", settings.server_host, settings.server_port)
    # Served through acechart's runner: what aiohttp refuses before routing (a request
    # line past ACECHART_SERVER_MAX_LINE_BYTES, ...) is answered in JSON too.
    with _port_guard(settings.server_port, "ACECHART_SERVER_PORT"):
        run(create_app(settings), host=settings.server_host, port=settings.server_port)
    return 0


def _demo(args: argparse.Namespace) -> int:
    import asyncio
    import os

    from acechart.demo import run_demo
    from acechart.server import malloc
    from acechart.server.requestlog import configure_logging
    from acechart.simulator.settings import SimulatorSettings

    overrides = _overrides(args, {"host": "server_host", "port": "server_port"})
    if "ACECHART_LOG_FORMAT" not in os.environ:
        overrides["log_format"] = "text"  # a person reads this terminal, not a log shipper
    settings = Settings.from_env(**overrides)
    simulator = SimulatorSettings.from_env(
        **_overrides(args, {"host": "host", "origin_port": "port"})
    )
    configure_logging(settings.log_format, settings.log_flush_s)
    malloc.tune(settings.malloc_mmap_threshold_bytes, settings.malloc_trim_threshold_bytes)
    with _port_guard(settings.server_port, "ACECHART_SERVER_PORT"):
        asyncio.run(run_demo(settings, simulator, data_dir=args.data_dir))
    return 0


def _query(args: argparse.Namespace) -> int:
    """`acechart query`: one query through the in-process engine, printed or written."""

    with _client(args) as ace:
        result = ace.query(
            args.site, _point_names(args.points), args.start, args.end, interval=args.interval
        )
        _write(result, args.format, args.output)
    return 0


def _export(args: argparse.Namespace) -> int:
    """`acechart export`: the points a group at a time, each group appended to the file,
    so a year of many points never sits in memory whole."""
    import pyarrow.csv as pacsv
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    names = _point_names(args.points)
    writer: Any = None
    written = 0
    with _client(args) as ace, open(args.output, "wb") as sink:
        for i in range(0, len(names), _EXPORT_GROUP):
            group = names[i : i + _EXPORT_GROUP]
            table = ace.query(args.site, group, args.start, args.end, interval=args.interval)
            arrow = table.to_arrow().cast(_export_schema(table.to_arrow().schema))
            if writer is None:
                if args.format == "parquet":
                    writer = pq.ParquetWriter(sink, arrow.schema)
                elif args.format == "arrow":
                    writer = ipc.new_stream(sink, arrow.schema)
                else:
                    writer = pacsv.CSVWriter(sink, arrow.schema)
            writer.write_table(arrow)
            written += arrow.num_rows
        if writer is not None:
            writer.close()
    logger.info("wrote %d rows of %d points to %s", written, len(names), args.output)
    return 0


#: Points per query of an export: bounds memory like a job's groups do.
_EXPORT_GROUP = 10


def _export_schema(schema: Any) -> Any:
    """The file's schema: point names as plain strings, so every group's table matches."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, pa.string()) if f.name == "point" else f for f in schema])


def _point_names(given: Sequence[str]) -> list[str]:
    return [p.strip() for item in given for p in item.split(",") if p.strip()]


def _client(args: argparse.Namespace) -> Any:
    import os

    from acechart.client import Client

    token = args.token or os.environ.get("ACECHART_TOKEN")
    if not token:
        raise ConfigError("a token is required: pass --token or set ACECHART_TOKEN")
    overrides = _overrides(args, {"origin": "origin_url", "data_dir": "data_dir"})
    return Client(token=token, progress=not args.no_progress, **overrides)


def _write(result: Any, fmt: str, output: str | None) -> None:
    """A Result to stdout or a file in one of the `query` formats."""
    if fmt == "table":
        import pandas as pd

        with pd.option_context("display.width", 200, "display.max_columns", 20):
            text = result.to_pandas().to_string() + "\n"
        _emit(text.encode(), output)
        return
    if fmt in ("csv", "json"):
        from acechart.wire import encode_aggregations, encode_timeseries, representation

        encode = encode_timeseries if result.query.interval == "raw" else encode_aggregations
        _emit(encode(result, representation(fmt)), output)
        return
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    table = result.to_arrow()
    sink = pa.BufferOutputStream()
    if fmt == "parquet":
        pq.write_table(table, sink)
    else:
        with ipc.new_stream(sink, table.schema) as stream:
            stream.write_table(table)
    _emit(sink.getvalue().to_pybytes(), output)


def _emit(data: bytes, output: str | None) -> None:
    if output is None or output == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        with open(output, "wb") as f:
            f.write(data)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run: Command = args.run
    try:
        try:
            return run(args)
        finally:
            # Batched log lines (`LineHandler`) go out before an error's own line.
            for handler in logging.getLogger().handlers:
                handler.flush()
    except ConfigError as exc:
        print(f"acechart: {_config_error(exc)}", file=sys.stderr)
        return 2
    except AcechartError as exc:
        print(f"acechart: {exc.message}", file=sys.stderr)
        return 1
    except PortInUse as exc:
        print(f"acechart: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
