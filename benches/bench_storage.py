"""Object store throughput: put and get of 1 MB blocks, local directory vs S3 (moto).

A block of a month of one-minute data is about this size once compressed, so
these numbers bound how fast the block cache can persist and reload blocks.
The S3 figures are for moto in this process, so they measure the client path
(signing, HTTP, parsing) rather than a real network; the local figures include
the fsync of every write. `make bench` runs them; the group shows MB/s.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from acechart.storage import LocalObjectStore, ObjectStore
from acechart.storage.s3 import S3ObjectStore
from tests.storage_fixtures import MotoS3, moto_s3

__all__ = ["moto_s3"]  # the session fixture, used below

BLOCK = random.Random(0).randbytes(1 << 20)
BATCH = 8  # blocks per round, written or read concurrently as the block cache does


@pytest.fixture(params=["local", "s3"])
def store_on_loop(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ObjectStore, asyncio.AbstractEventLoop]]:
    """An open store and the private event loop it belongs to (benchmarks are sync)."""
    loop = asyncio.new_event_loop()
    store: ObjectStore
    if request.param == "local":
        store = loop.run_until_complete(LocalObjectStore(tmp_path / "objects").open())
    else:
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        s3: S3ObjectStore = moto.store()
        store = loop.run_until_complete(s3.open())
    try:
        yield store, loop
    finally:
        loop.run_until_complete(store.close())
        loop.close()


def run_rounds(loop: asyncio.AbstractEventLoop, make: Callable[[int], Any]) -> Callable[[], None]:
    counter = itertools.count()

    async def batch(base: int) -> None:
        await asyncio.gather(*(make(base + i) for i in range(BATCH)))

    def one_round() -> None:
        loop.run_until_complete(batch(next(counter) * BATCH))

    return one_round


@pytest.mark.benchmark(group="object store put 8 x 1 MB")
def test_put(benchmark: Any, store_on_loop: tuple[ObjectStore, asyncio.AbstractEventLoop]) -> None:
    store, loop = store_on_loop
    benchmark.extra_info["impl"] = type(store).__name__
    benchmark.pedantic(
        run_rounds(loop, lambda i: store.put(f"bench/{i % 64}.blk", BLOCK)),
        rounds=10,
        warmup_rounds=1,
    )


@pytest.mark.benchmark(group="object store get 8 x 1 MB")
def test_get(benchmark: Any, store_on_loop: tuple[ObjectStore, asyncio.AbstractEventLoop]) -> None:
    store, loop = store_on_loop
    benchmark.extra_info["impl"] = type(store).__name__
    run_rounds(loop, lambda i: store.put(f"bench/{i}.blk", BLOCK))()

    async def get(i: int) -> None:
        assert len(await store.get(f"bench/{i % BATCH}.blk")) == len(BLOCK)

    benchmark.pedantic(run_rounds(loop, get), rounds=10, warmup_rounds=1)
