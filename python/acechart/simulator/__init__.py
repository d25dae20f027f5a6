"""An ACE-compatible API over generated data, for tests, benchmarks and the demo.

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

__all__ = [
    "DEMO_TOKEN",
    "FaultPlan",
    "RunningSimulator",
    "SimulatorConfig",
    "create_simulator_app",
    "run_simulator",
]
