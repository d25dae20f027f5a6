"""`acechart` commands as child processes on loopback ports, for tests that need real ones."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    """Return once `port` accepts connections; fail if `proc` exits or a minute passes."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start listening on {port}")


@contextlib.contextmanager
def start_process(
    args: Sequence[str], env: Mapping[str, str], port: int
) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m acechart <args>` until the block ends; it must listen on `port`."""
    cmd = [sys.executable, "-m", "acechart", "--log-level", "WARNING", *args]
    proc = subprocess.Popen(cmd, env=dict(env))
    try:
        wait_listening(port, proc, f"acechart {args[0]}")
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
