"""The block store: each point's raw samples in immutable monthly blocks.

A whole-query cache misses as soon as a chart pans by a minute; blocks hold raw
samples plus the intervals they cover, so any overlapping query reuses them and
only what is uncovered goes to the origin. Only sealed samples (older than the
freshness horizon) are stored, so the fresh edge is always asked for again.

Blocks are written whole (read, merge, encode, atomic put) under a per-block
lock, held only while someone uses it (`_KeyLocks`); one write's metadata rows
are committed together, so a fetch's coverage appears whole. The rows in
`cache_metadata` carry size, sample count, tier, expiry, hits and last access
for the sweeper. A block that cannot be read back (damaged bytes, wrong point,
missing object) is logged, counted, deleted and treated as a miss: never an
error for the caller and never wrong data.

The codec's checksummed header records the block's point but not its site or
period, so a block copied under another month's key (a restore gone wrong, a
hand-made copy) would decode cleanly. Its period is therefore checked here:
every sample and covered interval must lie inside the UTC month its key names,
and the metadata row must name that month; anything else is damage like a bad
checksum. (A copy under another *site's* key with the same point name cannot be
told apart by content; keys are never written from outside the block store.)
A merge keeps only samples and coverage inside the block's period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from acechart._core import BlockDecodeError, decode_block, encode_block
from acechart.cache import intervals as iv
from acechart.cache.periods import periods
from acechart.cache.policy import retention, tier_of
from acechart.storage.database import Database
from acechart.storage.keys import block_key
from acechart.storage.objects import CorruptObject, ObjectNotFound, ObjectStore, StorageError
from acechart.storage.records import BlockMeta

logger = logging.getLogger(__name__)

_EMPTY_TS = np.zeros(0, np.int64)
_EMPTY_V = np.zeros(0, np.float64)
_READ_CONCURRENCY = 16


@dataclass
class CachedPoint:
    """What the cache holds of one point in a range: samples and covered intervals."""

    ts: NDArray[np.int64] = field(default_factory=lambda: _EMPTY_TS)
    values: NDArray[np.float64] = field(default_factory=lambda: _EMPTY_V)
    covered: list[iv.Interval] = field(default_factory=list)
    blocks: int = 0
    corrupt: int = 0


@dataclass
class _Block:
    point: str
    ts: NDArray[np.int64]
    values: NDArray[np.float64]
    covered: list[iv.Interval]


@dataclass
class SweepReport:
    expired: int = 0
    evicted: int = 0
    bytes_freed: int = 0


class _KeyLocks:
    """One lock per key while anyone holds or waits for it, forgotten when free: memory
    follows the writes in flight, not every block ever written."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class BlockStore:
    def __init__(
        self,
        store: ObjectStore,
        db: Database,
        *,
        horizon_ms: int,
        budget_bytes: int,
    ) -> None:
        self.store = store
        self.db = db
        self.horizon_ms = horizon_ms
        self.budget_bytes = budget_bytes
        self.corrupt_total = 0
        self._locks = _KeyLocks()
        self._read_limit = asyncio.Semaphore(_READ_CONCURRENCY)

    # --- read -------------------------------------------------------------------

    async def coverage(
        self, site: str, points: Iterable[str], start: int, end: int, now: int
    ) -> dict[str, list[iv.Interval]]:
        """Covered intervals per point from block metadata alone: one query, no object reads.

        Planning needs only what is covered, not the samples; a block that later
        turns out damaged is then refetched by the query itself.
        """
        keys, live = await self._live_meta(site, points, start, end, now)
        return {
            point: iv.clip(
                iv.normalize(c for k in ks if k in live for c in live[k].covered), start, end
            )
            for point, ks in keys.items()
        }

    async def _live_meta(
        self, site: str, points: Iterable[str], start: int, end: int, now: int
    ) -> tuple[dict[str, list[str]], dict[str, BlockMeta]]:
        """Block keys per point for the range, and the metadata of those not expired."""
        keys = {p: [block_key(site, p, name) for name, _, _ in periods(start, end)] for p in points}
        metas = await self.db.get_block_meta(k for ks in keys.values() for k in ks)
        return keys, {k: m for k, m in metas.items() if m.expires_at > now // 1000}

    async def read(
        self, site: str, points: Iterable[str], start: int, end: int, now: int
    ) -> dict[str, CachedPoint]:
        """Cached samples in `[start, end)` and the covered intervals, per point."""
        points = list(points)
        keys, live = await self._live_meta(site, points, start, end, now)
        bounds = {
            block_key(site, p, name): (p, p_start, p_end)
            for p in points
            for name, p_start, p_end in periods(start, end)
        }
        blocks = await asyncio.gather(
            *(self._load(k, bounds[k][0], bounds[k][1:], live[k]) for k in live)
        )
        loaded = dict(zip(live, blocks, strict=True))
        hits = [k for k, b in loaded.items() if b is not None]
        if hits:
            await self.db.touch_blocks(hits, now=now // 1000)
        del blocks
        out = {}
        for point, point_keys in keys.items():
            # Each point's blocks leave `loaded` as they are joined: a year of 50 points
            # then peaks at its samples plus one point's, not twice its samples.
            got = [loaded.pop(k) for k in point_keys if k in loaded]
            out[point] = self._assemble(got, start, end)
            out[point].corrupt = sum(1 for b in got if b is None)
            del got
        return out

    def _assemble(self, got: list[_Block | None], start: int, end: int) -> CachedPoint:
        blocks = [b for b in got if b is not None]
        if not blocks:
            return CachedPoint()
        if len(blocks) == 1:
            ts, values = blocks[0].ts, blocks[0].values
        else:
            ts = np.concatenate([b.ts for b in blocks])
            values = np.concatenate([b.values for b in blocks])
        lo, hi = np.searchsorted(ts, [start, end])
        covered = iv.clip(iv.normalize(c for b in blocks for c in b.covered), start, end)
        return CachedPoint(ts[lo:hi], values[lo:hi], covered, blocks=len(blocks))

    async def _load(
        self, key: str, point: str, period: tuple[int, int], meta: BlockMeta
    ) -> _Block | None:
        """One block, or None when it is missing or damaged (and then removed).

        Damaged means exactly: an object the store cannot read back (`CorruptObject`,
        a torn or tampered file), bytes that do not decode (`BlockDecodeError`), a
        block of another point, or one whose samples, coverage or metadata row lie
        outside the period `[start, end)` its key names. Any other exception is a bug
        and propagates.
        """
        p_start, p_end = period
        if meta.point != point or meta.period_start != p_start:
            await self._damaged(key, "its metadata row names another point or period")
            return None
        async with self._read_limit:
            try:
                data = await self.store.get(key)
            except ObjectNotFound:
                logger.warning("block %s has metadata but no object; dropping it", key)
                await self.db.delete_block_meta([key])
                return None
            except CorruptObject as exc:
                await self._damaged(key, exc)
                return None
        try:
            name, ts, values, covered = await asyncio.to_thread(decode_block, data)
        except BlockDecodeError as exc:
            await self._damaged(key, exc)
            return None
        if name != point:
            await self._damaged(key, f"block holds point {name!r}, expected {point!r}")
            return None
        intervals = [(int(s), int(e)) for s, e in covered]
        if (len(ts) and (int(ts.min()) < p_start or int(ts.max()) >= p_end)) or any(
            s < p_start or e > p_end for s, e in intervals
        ):
            await self._damaged(key, "it holds samples outside the period its key names")
            return None
        return _Block(name, ts, values, intervals)

    async def _damaged(self, key: str, why: Exception | str) -> None:
        """Count, log and delete a block that cannot be read back; the caller refetches."""
        self.corrupt_total += 1
        logger.error("corrupt block %s (%s); deleting it and refetching", key, why)
        await self._drop([key])

    # --- write ------------------------------------------------------------------

    async def write(
        self,
        site: str,
        samples: dict[str, tuple[NDArray[np.int64], NDArray[np.float64]]],
        fetched: dict[str, list[iv.Interval]],
        now: int,
    ) -> int:
        """Merge freshly fetched samples into their blocks; returns blocks written.

        `fetched[point]` are the intervals the origin was asked for and answered
        completely: their sealed part becomes covered even where it holds no
        samples (a gap in the data is a fact worth caching too).

        The objects are put first and every metadata row of the write is committed
        in one transaction, so a reader (here or on another instance) sees all of a
        fetch's coverage or none of it. A reader that saw part of it would plan other
        gaps than the writer's, miss the writer's fetch lock and fetch the rest again.
        """
        seal = now - self.horizon_ms
        jobs: dict[str, tuple[str, tuple[int, int], list[iv.Interval]]] = {}
        arrays = {}
        for point, (ts, values) in samples.items():
            sealed = iv.clip(iv.normalize(fetched.get(point, [])), -(2**62), seal)
            if not sealed:
                continue
            arrays[point] = ts, values
            for name, p_start, p_end in periods(sealed[0][0], sealed[-1][1]):
                part = iv.clip(sealed, p_start, p_end)
                if part:
                    jobs[block_key(site, point, name)] = (point, (p_start, p_end), part)
        if not jobs:
            return 0
        async with contextlib.AsyncExitStack() as held:
            # Sorted, so two writes of overlapping blocks cannot each wait on the other.
            for key in sorted(jobs):
                await held.enter_async_context(self._locks.hold(key))
            merged = await asyncio.gather(
                *(
                    self._merge_block(key, point, bounds, *arrays[point], part, now, site)
                    for key, (point, bounds, part) in jobs.items()
                )
            )
            metas = [m for m in merged if m is not None]
            try:
                await self.db.upsert_block_meta(metas, now=now // 1000)
            except StorageError as exc:
                # The answer is already computed; a failed cache write only costs a refetch.
                logger.error("could not record %d blocks of %s: %s", len(metas), site, exc)
                return 0
        return len(metas)

    async def _merge_block(
        self,
        key: str,
        point: str,
        bounds: tuple[int, int],
        ts: NDArray[np.int64],
        values: NDArray[np.float64],
        part: list[iv.Interval],
        now: int,
        site: str,
    ) -> BlockMeta | None:
        """Merge `part` of the samples into block `key` and put it; its row is the caller's.

        The caller holds the block's lock until the row is committed.
        """
        period_start, period_end = bounds
        part = iv.clip(part, period_start, period_end)
        try:
            old = await self._current(key, point, bounds, now)
            covered = iv.clip(iv.union(old.covered if old else [], part), period_start, period_end)
            new_ts, new_v = _within(ts, values, part)
            if old is not None and len(old.ts):
                # Never keep a sample outside the period, nor one the fetch replaced.
                keep = ~_inside(old.ts, part) & _inside(old.ts, [bounds])
                merged_ts = np.concatenate([old.ts[keep], new_ts])
                merged_v = np.concatenate([old.values[keep], new_v])
                order = np.argsort(merged_ts, kind="stable")
                new_ts, new_v = merged_ts[order], merged_v[order]
            cov = np.array(covered, dtype=np.int64).reshape(-1, 2)
            data = await asyncio.to_thread(encode_block, point, new_ts, new_v, cov)
            await self.store.put(key, data, {"point-hash": key.rsplit("/", 2)[-2]}, None)
        except StorageError as exc:
            # The answer is already computed; a failed cache write only costs a refetch.
            logger.error("could not write block %s: %s", key, exc)
            return None
        return BlockMeta(
            key=key,
            site=site,
            point=point,
            period_start=period_start,
            covered=tuple(covered),
            size_bytes=len(data),
            sample_count=len(new_ts),
            tier=tier_of(min(period_end, now), now),
            expires_at=now // 1000 + retention(min(period_end, now), now).blocks_s,
        )

    async def _current(
        self, key: str, point: str, period: tuple[int, int], now: int
    ) -> _Block | None:
        metas = await self.db.get_block_meta([key])
        meta = metas.get(key)
        if meta is None or meta.expires_at <= now // 1000:
            return None
        return await self._load(key, point, period, meta)

    # --- retention --------------------------------------------------------------

    async def sweep(self, now: int) -> SweepReport:
        """Delete expired blocks, then least recently used ones over the size budget."""
        report = SweepReport()
        expired = await self.db.expired_blocks(now // 1000)
        if expired:
            await self._drop([m.key for m in expired])
            report.expired = len(expired)
            report.bytes_freed += sum(m.size_bytes for m in expired)
        over = await self.db.lru_blocks_over_budget(self.budget_bytes)
        if over:
            await self._drop([m.key for m in over])
            report.evicted = len(over)
            report.bytes_freed += sum(m.size_bytes for m in over)
        return report

    async def _drop(self, keys: list[str]) -> None:
        """Object first, then metadata: a crash in between leaves a row that reads as a miss."""
        await self.store.delete_many(keys)
        await self.db.delete_block_meta(keys)


def _inside(ts: NDArray[np.int64], part: list[iv.Interval]) -> NDArray[np.bool_]:
    mask = np.zeros(len(ts), dtype=bool)
    for start, end in part:
        lo, hi = np.searchsorted(ts, [start, end])
        mask[lo:hi] = True
    return mask


def _within(
    ts: NDArray[np.int64], values: NDArray[np.float64], part: list[iv.Interval]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    mask = _inside(ts, part)
    return ts[mask], values[mask]
