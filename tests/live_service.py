"""The simulator and the service on loopback ports, served from an event loop in a thread.

For tests that drive the service from synchronous code (schemathesis calls it
with `requests`): the real application from `create_app`, served through
acechart's own runner like `acechart serve`, over the realistic simulator, with
SQLite and the object store under a temporary directory and the engine's clock
fixed at the simulator's "now" so every run sees the same data.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from acechart.server import create_app
from acechart.server.keys import RUNTIME
from acechart.server.runner import AppRunner
from acechart.settings import Settings
from acechart.simulator.app import SIMULATOR, SimulatorConfig, SimulatorState, create_simulator_app
from tests.conftest import NOW_MS, origin_settings

T = TypeVar("T")


@dataclass
class LiveService:
    """Handles on a running pair: the base URLs, the settings and the simulator's state."""

    url: str
    sim_url: str
    settings: Settings
    app: web.Application
    state: SimulatorState
    loop: asyncio.AbstractEventLoop

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
        """Run `coro` on the service's loop (for reading its state) and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


async def _serve(runner: web.BaseRunner) -> str:
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    sockets = runner.addresses
    host, port = sockets[0][:2]
    return f"http://{host}:{port}"


@contextmanager
def live_service(
    data_dir: Path, simulator: dict[str, Any] | None = None, **overrides: Any
) -> Iterator[LiveService]:
    """Start the simulator (`SimulatorConfig` fields in `simulator`) and the service
    (settings `overrides`); stop both when the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="live-service", daemon=True)
    thread.start()

    def call(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    sim_app = create_simulator_app(SimulatorConfig(now_ms=NOW_MS, **(simulator or {})))
    sim_runner = web.AppRunner(sim_app)
    runner: AppRunner | None = None
    try:
        sim_url = call(_serve(sim_runner))
        settings = origin_settings(sim_url, data_dir=str(data_dir), **overrides)
        app = create_app(settings)
        runner = AppRunner(app)
        url = call(_serve(runner))
        app[RUNTIME].engine.clock = lambda: NOW_MS
        yield LiveService(url, sim_url, settings, app, sim_app[SIMULATOR], loop)
    finally:
        if runner is not None:
            call(runner.cleanup())
        call(sim_runner.cleanup())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
