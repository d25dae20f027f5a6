"""The hand-written `_core.pyi` must match the compiled module."""

import subprocess
import sys


def test_stubtest() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "acechart._core"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
