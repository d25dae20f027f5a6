"""`acechart demo`: the ACE simulator and the service in one process, ready to click.

The simulator plays the ACE origin on one local port (accepting the demo
token for every site, data up to the wall clock) and the service runs on
another with its cache in a fresh temporary directory (or `--data-dir`). The
banner prints the dashboard URL (token in the fragment, which the browser
keeps to itself), the API description and a curl command that works as is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shlex
import signal
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from aiohttp import web

from acechart.server import create_app
from acechart.server.runner import AppRunner
from acechart.settings import Settings
from acechart.simulator.app import SimulatorConfig, run_simulator
from acechart.simulator.settings import SimulatorSettings

__all__ = ["banner", "run_demo"]


def banner(settings: Settings, service_url: str, origin_url: str, site: str, point: str) -> str:
    token = settings.demo_token
    today = datetime.now(UTC).date()
    query = urlencode(
        {
            "site": site,
            "points": point,
            "start": (today - timedelta(days=1)).isoformat(),
            "end": (today + timedelta(days=1)).isoformat(),
            "interval": "1hr",
        },
        safe="/,",
    )
    fragment = urlencode({"token": token, "site": site, "point": point}, quote_via=quote)
    curl = (
        f"curl -s --compressed -H {shlex.quote('X-ACE-Token: ' + token)} "
        f"{shlex.quote(f'{service_url}/api/timeseries?{query}')}"
    )
    return "\n".join(
        [
            "",
            "acechart demo is running (Ctrl-C to stop)",
            f"  dashboard  {service_url}/#{fragment}",
            f"  API        {service_url}/api/openapi.json",
            f"  metrics    {service_url}/metrics",
            f"  origin     {origin_url}  (the ACE simulator)",
            f"  token      {token}",
            f"  data       {settings.data_dir}",
            "",
            "Try:",
            f"  {curl}",
            "",
        ]
    )


@contextlib.asynccontextmanager
async def _service(settings: Settings) -> AsyncIterator[str]:
    # acechart's runner, so what aiohttp refuses before routing is answered in JSON too.
    runner = AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.server_host, settings.server_port).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def run_demo(
    settings: Settings, simulator_settings: SimulatorSettings, *, data_dir: str | None = None
) -> None:
    """Serve until interrupted; `data_dir` None: a temporary directory removed at the end."""
    config = dataclasses.replace(
        SimulatorConfig.from_settings(simulator_settings),
        tokens={settings.demo_token: frozenset({"*"})},
        now_ms=None,
    )
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="acechart-demo-"))
        async with run_simulator(
            config, simulator_settings.host, simulator_settings.port
        ) as simulator:
            service_settings = dataclasses.replace(
                settings, origin_url=simulator.url, data_dir=data_dir
            )
            async with _service(service_settings) as url:
                site = config.sites[0]
                point = simulator.state.data.sites[site].names[0]
                print(banner(service_settings, url, simulator.url, site, point), flush=True)
                await _until_stopped()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
