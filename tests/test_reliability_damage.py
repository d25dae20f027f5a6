"""Damage to the cache, case by case, on the local store and on S3 (moto): every case
ends in the answer a clean run gives.

Blocks are truncated, zeroed, garbled, emptied, deleted, swapped with another point's
or another month's; `cache_metadata` rows get garbage coverage, NULLs, a wrong period
or coverage the block does not hold. After the damage the same query must return
exactly the clean answer (from what is intact, plus the origin for the rest), and the
one after that must too.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from acechart.query import Query
from acechart.result import Result
from acechart.runtime import Runtime
from acechart.storage.keys import block_key
from acechart.times import parse_iso_ms
from tests.conftest import NOW_MS, SITE, TOKEN, Sim, origin_settings
from tests.storage_fixtures import ACCESS_KEY, REGION, SECRET_KEY, MotoS3

START = parse_iso_ms("2024-11-20T00:00:00Z")
END = parse_iso_ms("2024-12-08T00:00:00Z")
NOV, DEC = "2024-11", "2024-12"


@dataclass
class Case:
    runtime: Runtime
    points: tuple[str, str]
    backend: str
    data_dir: Path

    def key(self, point: int, period: str) -> str:
        return block_key(SITE, self.points[point], period)

    async def sql(self, statement: str, *params: Any) -> None:
        await self.runtime.db.execute(statement, params)


Damage = Callable[[Case], Awaitable[None]]


async def _truncate(c: Case) -> None:
    data = await c.runtime.store.get(c.key(0, DEC))
    await c.runtime.store.put(c.key(0, DEC), data[: len(data) // 2])


async def _zero(c: Case) -> None:
    data = await c.runtime.store.get(c.key(0, NOV))
    await c.runtime.store.put(c.key(0, NOV), bytes(len(data)))


async def _garble(c: Case) -> None:
    data = bytearray(await c.runtime.store.get(c.key(1, DEC)))
    for i in range(len(data) // 3, len(data) // 3 + 16):
        data[i] ^= 0x5A
    await c.runtime.store.put(c.key(1, DEC), bytes(data))


async def _empty(c: Case) -> None:
    await c.runtime.store.put(c.key(1, NOV), b"")


async def _delete(c: Case) -> None:
    await c.runtime.store.delete(c.key(0, DEC))


async def _swap_points(c: Case) -> None:
    a, b = c.key(0, DEC), c.key(1, DEC)
    da, db = await c.runtime.store.get(a), await c.runtime.store.get(b)
    await c.runtime.store.put(a, db)
    await c.runtime.store.put(b, da)


async def _swap_months(c: Case) -> None:
    n, d = c.key(0, NOV), c.key(0, DEC)
    dn, dd = await c.runtime.store.get(n), await c.runtime.store.get(d)
    await c.runtime.store.put(n, dd)
    await c.runtime.store.put(d, dn)


async def _local_file_truncated(c: Case) -> None:
    if c.backend != "local":
        pytest.skip("a torn file is a property of the local store")
    path = c.data_dir / "objects" / c.key(0, DEC)
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 7)


async def _row_garbage_covered(c: Case) -> None:
    await c.sql(
        "UPDATE cache_metadata SET covered = '{not json' WHERE cache_key = ?", c.key(0, DEC)
    )


async def _row_null_size(c: Case) -> None:
    await c.sql("UPDATE cache_metadata SET size_bytes = NULL WHERE cache_key = ?", c.key(1, DEC))


async def _row_wrong_period(c: Case) -> None:
    await c.sql(
        "UPDATE cache_metadata SET period_start = period_start - 86400000 WHERE cache_key = ?",
        c.key(0, NOV),
    )


async def _row_covers_more_than_the_block(c: Case) -> None:
    # The row claims the whole month; the block itself holds only what was fetched.
    await c.sql(
        "UPDATE cache_metadata SET covered = ? WHERE cache_key = ?",
        f"[[{parse_iso_ms('2024-12-01T00:00:00Z')},{parse_iso_ms('2025-01-01T00:00:00Z')}]]",
        c.key(1, DEC),
    )


async def _row_and_block_both(c: Case) -> None:
    await _zero(c)
    await _row_garbage_covered(c)
    await _swap_points(c)


DAMAGES: dict[str, Damage] = {
    "truncated": _truncate,
    "zeroed": _zero,
    "garbled": _garble,
    "empty": _empty,
    "deleted": _delete,
    "swapped-points": _swap_points,
    "swapped-months": _swap_months,
    "torn-file": _local_file_truncated,
    "row-garbage-covered": _row_garbage_covered,
    "row-null-size": _row_null_size,
    "row-wrong-period": _row_wrong_period,
    "row-covers-more": _row_covers_more_than_the_block,
    "several": _row_and_block_both,
}


def _samples(result: Result) -> list[tuple[str, list[int], list[float]]]:
    return [(s.name, s.ts.tolist(), s.values.tolist()) for s in result.series]


@pytest.fixture(params=["local", "s3"])
async def open_runtime(
    request: pytest.FixtureRequest, sim: Sim, tmp_path: Path
) -> AsyncIterator[Callable[[], Awaitable[Runtime]]]:
    opened: list[Runtime] = []
    extra: dict[str, Any] = {}
    if request.param == "s3":
        moto: MotoS3 = request.getfixturevalue("moto_s3")
        extra = {
            "object_store": "s3",
            "s3_endpoint_url": moto.endpoint_url,
            "s3_bucket": moto.bucket,
            "s3_region": REGION,
            "s3_access_key": ACCESS_KEY,
            "s3_secret_key": SECRET_KEY,
            "s3_prefix": f"damage-{uuid.uuid4().hex[:10]}/",
        }

    async def open_one() -> Runtime:
        settings = origin_settings(sim.url, data_dir=str(tmp_path / "data"), **extra)
        rt = await Runtime.open(settings)
        rt.engine.clock = lambda: NOW_MS
        opened.append(rt)
        return rt

    open_one.backend = request.param  # type: ignore[attr-defined]
    yield open_one
    for rt in opened:
        await rt.close()


@pytest.mark.parametrize("damage", list(DAMAGES))
async def test_damage_ends_in_the_clean_answer(
    open_runtime: Callable[[], Awaitable[Runtime]], sim: Sim, tmp_path: Path, damage: str
) -> None:
    table = sim.site
    points = tuple(n for i, n in enumerate(table.names) if table.cadence_ms[i] == 300_000)[:2]
    assert len(points) == 2
    q = Query(SITE, points, START, END)
    runtime = await open_runtime()
    clean = _samples(await runtime.engine.query(q, token=TOKEN))  # from the origin
    assert all(len(ts) for _, ts, _ in clean)
    assert _samples(await runtime.engine.query(q, token=TOKEN)) == clean  # from the blocks
    case = Case(runtime, (points[0], points[1]), open_runtime.backend, tmp_path / "data")  # type: ignore[attr-defined]
    await DAMAGES[damage](case)
    assert _samples(await runtime.engine.query(q, token=TOKEN)) == clean
    assert _samples(await runtime.engine.query(q, token=TOKEN)) == clean
    # And from a process that starts on the damaged-then-repaired state.
    await runtime.close()
    reopened = await open_runtime()
    sim.log.clear()
    assert _samples(await reopened.engine.query(q, token=TOKEN)) == clean
