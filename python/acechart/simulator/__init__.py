"""An ACE-compatible API over generated data, for tests, benchmarks and the demo.

By default it behaves as the real ACE API does in the field; an idealised mode
(`SimulatorSettings.mode`, `ACECHART_SIMULATOR_MODE=idealised`) is the API a
client would wish for. See `app` for the differences.

Beside the origin client, never imported by the package proper: `import
acechart` loads none of this (nor aiohttp's server).
"""

from acechart.simulator.app import (
    DEMO_TOKEN,
    RunningSimulator,
    SimulatorConfig,
    create_simulator_app,
    run_simulator,
)
from acechart.simulator.faults import FaultPlan
from acechart.simulator.settings import SimulatorSettings

__all__ = [
    "DEMO_TOKEN",
    "FaultPlan",
    "RunningSimulator",
    "SimulatorConfig",
    "SimulatorSettings",
    "create_simulator_app",
    "run_simulator",
]
