"""Tasks that outlive the request that started them, shared by key and cancelled at shutdown.

Used for edge-cache refreshes (stale-while-revalidate) and for computing one
answer for concurrent identical requests: a caller that disconnects does not
cancel the work the others wait for, and shutdown never leaves a task behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, TypeVar, cast

__all__ = ["Background"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class Background:
    def __init__(self) -> None:
        self._tasks: dict[Hashable, asyncio.Task[Any]] = {}
        self._closed = False

    def running(self, key: Hashable) -> bool:
        return key in self._tasks

    def run(self, key: Hashable, start: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
        """The task running under `key`, or a new one from `start()`."""
        task = self._tasks.get(key)
        if task is not None:
            return cast(asyncio.Task[T], task)
        if self._closed:
            raise RuntimeError("the service is shutting down")
        new = asyncio.create_task(start())
        self._tasks[key] = new
        new.add_done_callback(lambda t: self._done(key, t))
        return new

    def _done(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        if self._tasks.get(key) is task:
            del self._tasks[key]
        # Nobody may await a refresh: retrieve its exception so asyncio does not warn.
        if not task.cancelled():
            task.exception()

    async def drain(self) -> None:
        """Wait until every task running now has finished (whatever its outcome)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
