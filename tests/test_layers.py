"""The layers of ARCHITECTURE.md hold: imports run downward, and `import acechart` stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    """The import-linter contracts in pyproject.toml (layers, and what nothing below the
    server may load) are all kept."""
    lint = Path(sys.executable).with_name("lint-imports")
    run = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "broken" not in run.stdout.lower().replace("0 broken", "")


def test_import_acechart_loads_neither_the_server_nor_the_simulator() -> None:
    """A notebook's `import acechart` must not pay for aiohttp's server or the simulator's
    generators (and must not depend on the order of imports to work)."""
    probe = (
        "import sys, acechart\n"
        "loaded = sorted(m for m in sys.modules if m == 'aiohttp.web' or m.startswith("
        "('aiohttp.web_', 'acechart.simulator', 'acechart.server')))\n"
        "print(','.join(loaded))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert run.stdout.strip() == ""


def test_every_layer_imports_on_its_own() -> None:
    """Each layer imports first in a fresh interpreter: no cycle that only works by luck of
    the order in which a test run happens to import modules."""
    modules = [
        "acechart.wire",
        "acechart.storage.database",
        "acechart.cache.blocks",
        "acechart.cache.catalog",
        "acechart.origin.client",
        "acechart.engine",
        "acechart.jobs.service",
        "acechart.runtime",
        "acechart.server.app",
        "acechart.simulator.app",
    ]
    for module in modules:
        run = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=60
        )
        assert run.returncode == 0, f"{module}: {run.stderr}"
