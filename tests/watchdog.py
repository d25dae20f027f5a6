"""A test that hangs fails with the await it hangs on, instead of stalling the whole run.

Every test gets a watchdog thread, over its setup, call and teardown. When a
test runs past `ACECHART_TEST_HANG_S` (300 s; no test comes near it), the
watchdog writes every unfinished asyncio task's stack and every thread's stack
to stderr (pytest shows it with the failure) and cancels the tasks of the
running event loops: the test then fails with a `CancelledError` whose
traceback ends at the await that never returned, and the run goes on to the
next test. A hang seen once in a CI run is then a failure with its place, not
a timeout of the run. (A test that hangs outside any event loop gets its stacks
written, and still hangs.)
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import threading
import traceback
from collections.abc import Iterator

import pytest

HANG_S = float(os.environ.get("ACECHART_TEST_HANG_S", "300"))


def _running_loops() -> list[asyncio.AbstractEventLoop]:
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, asyncio.AbstractEventLoop) and o.is_running() and not o.is_closed()
    ]


def _unfinished(loop: asyncio.AbstractEventLoop) -> list[asyncio.Task[object]]:
    # `all_tasks(loop)` is for the loop's own thread; from here, read the registry it
    # reads, again if the loop changed it while it was copied.
    registry = getattr(asyncio.tasks, "_all_tasks", ())
    for _ in range(100):
        try:
            tasks = list(registry)
        except RuntimeError:
            continue
        return [t for t in tasks if t.get_loop() is loop and not t.done()]
    return []


def _bite(nodeid: str) -> None:
    out = sys.stderr
    print(f"\n===== {nodeid} still running after {HANG_S:g} s: stacks =====", file=out)
    for tid, frame in sys._current_frames().items():
        print(f"--- thread {tid}", file=out)
        traceback.print_stack(frame, file=out)
    for loop in _running_loops():
        for task in _unfinished(loop):
            print(f"--- task {task.get_name()}", file=out)
            task.print_stack(limit=40, file=out)
            loop.call_soon_threadsafe(task.cancel)
    out.flush()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    timer = threading.Timer(HANG_S, _bite, args=(item.nodeid,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
