"""The test watchdog (`tests/watchdog.py`): a hung test fails at its await, and the run goes on."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HUNG = """
import asyncio

async def test_hangs():
    await asyncio.Event().wait()

async def test_after_it():
    await asyncio.sleep(0)
"""


def test_a_hung_test_is_cancelled_with_its_stack_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_hung.py").write_text(HUNG)
    (tmp_path / "conftest.py").write_text("")
    env = {**os.environ, "ACECHART_TEST_HANG_S": "1"}
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "tests.watchdog",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            "-q",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "test_hung.py::test_hangs still running after 1 s" in out
    assert "CancelledError" in out and "Event().wait()" in out
    assert "1 failed, 1 passed" in out
