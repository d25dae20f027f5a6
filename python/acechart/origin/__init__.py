"""The ACE origin: a client that fetches every sample, and a simulator that speaks the API.

`OriginClient.fetch_samples` is what the engine calls to fill cache gaps; the
simulator (`create_simulator_app`, `run_simulator`, `acechart simulate`) is what
tests, benchmarks and the demo run against instead of the real ACE API.
"""

from acechart.origin.client import OriginClient, Progress, ProgressCallback, Samples
from acechart.origin.faults import FaultPlan
from acechart.origin.simulator import (
    DEMO_TOKEN,
    RunningSimulator,
    SimulatorConfig,
    create_simulator_app,
    run_simulator,
)

__all__ = [
    "DEMO_TOKEN",
    "FaultPlan",
    "OriginClient",
    "Progress",
    "ProgressCallback",
    "RunningSimulator",
    "Samples",
    "SimulatorConfig",
    "create_simulator_app",
    "run_simulator",
]
