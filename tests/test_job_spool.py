"""A job's spool files are closed once the run stops, even when it stops mid-encode."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
import pytest

from acechart.jobs.export import ResultWriter
from acechart.query import Query
from acechart.result import Series
from acechart.wire import JSON_ROWS, Representation


def open_under(directory: Path) -> list[str]:
    """Paths of this process's open files inside `directory` (deleted ones too)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


def big_series(name: str, n: int) -> Series:
    ts = np.arange(n, dtype=np.int64) * 60_000
    return Series(name, ts, np.sin(np.arange(n, dtype=np.float64)))


@pytest.mark.parametrize("representation", [JSON_ROWS, Representation("parquet")])
async def test_a_run_cancelled_mid_encode_leaves_no_spool_open(
    tmp_path: Path, representation: Representation
) -> None:
    """Parquet too: its writer is closed with the spools, never under a running part."""
    spool_dir = tmp_path / "spool"
    n = 1_000_000
    query = Query("site", ("a", "b"), 0, n * 60_000)
    for delay in (0.0, 0.002, 0.01, 0.03):
        writer = ResultWriter("job", query, representation, spool_dir)
        adding = asyncio.create_task(writer.add([big_series("a", n), big_series("b", n)]))
        await asyncio.sleep(delay)
        adding.cancel()
        with pytest.raises(asyncio.CancelledError):
            await adding
        writer.close()
        # Had the encoding thread outlived the cancel, it would open a spool after close.
        await asyncio.sleep(0.3)
        assert open_under(spool_dir) == []
        assert writer.entries == [] or writer.entries[0].name == "a"


async def test_a_closed_spool_refuses_writes(tmp_path: Path) -> None:
    query = Query("site", ("a",), 0, 60_000)
    writer = ResultWriter("job", query, JSON_ROWS, tmp_path)
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        await writer.add([big_series("a", 3)])
    assert open_under(tmp_path) == []
