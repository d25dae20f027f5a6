"""Everything a running acechart needs, built from one Settings and torn down in order.

The server keeps one `Runtime` for its lifetime; notebooks get one from
`acechart.Client`. Building it here keeps the wiring (which store, which
database file, which clock) in one place instead of in each entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from acechart.cache.aggregates import AggregateStore
from acechart.cache.blocks import BlockStore
from acechart.cache.catalog import PointCatalog
from acechart.engine import Engine, FetchPolicy
from acechart.origin.client import OriginClient
from acechart.settings import Settings
from acechart.storage.database import Database
from acechart.storage.local import LocalObjectStore
from acechart.storage.locks import FetchLocks
from acechart.storage.objects import ObjectStore
from acechart.storage.redis_client import SharedRedis

logger = logging.getLogger(__name__)


async def open_object_store(settings: Settings) -> ObjectStore:
    if settings.object_store == "s3":
        from acechart.storage.s3 import S3ObjectStore

        return await S3ObjectStore(
            settings.s3_endpoint_url,
            settings.s3_bucket,
            region=settings.s3_region,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            prefix=settings.s3_prefix,
            addressing_style="virtual" if settings.s3_addressing_style == "virtual" else "path",
        ).open()
    return await LocalObjectStore(Path(settings.data_dir) / "objects").open()


async def open_database(settings: Settings) -> Database:
    """The shared PostgreSQL database when `database_url` is set, else the SQLite file."""
    if settings.database_url:
        from acechart.storage.postgres import PostgresDatabase

        return await PostgresDatabase.open_url(
            settings.database_url, pool_size=settings.database_pool_size
        )
    return await Database.open(
        Path(settings.data_dir) / "acechart.db", busy_timeout_ms=settings.db_busy_timeout_ms
    )


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: ObjectStore
    origin: OriginClient
    engine: Engine
    catalog: PointCatalog
    redis: SharedRedis | None = None
    """The shared Redis when `redis_url` is set (jobs, rate limits, fetch locks use it)."""
    _sweeper: asyncio.Task[None] | None = field(default=None, repr=False)

    @classmethod
    async def open(cls, settings: Settings, *, sweep: bool = False) -> Runtime:
        """Open the database and object store and build the engine over them.

        With `sweep`, a background task deletes expired blocks and aggregates and
        enforces the block budget every `sweep_interval_s`.
        """
        db = await open_database(settings)
        redis: SharedRedis | None = None
        try:
            store = await open_object_store(settings)
            if settings.redis_url:
                try:
                    redis = await SharedRedis.open(settings.redis_url, settings.redis_prefix)
                except BaseException:
                    await store.close()
                    raise
        except BaseException:
            await db.close()
            raise
        # Nothing below does I/O or can fail on valid settings: no cleanup needed.
        origin = OriginClient(settings)
        horizon_ms = settings.freshness_horizon_s * 1000
        blocks = BlockStore(
            store, db, horizon_ms=horizon_ms, budget_bytes=settings.block_budget_bytes
        )
        catalog = PointCatalog(db, origin, refresh_s=settings.points_refresh_s)
        engine = Engine(
            blocks,
            AggregateStore(db),
            origin,
            catalog=catalog,
            policy=FetchPolicy.from_settings(settings),
            reset_threshold=settings.meter_reset_threshold,
            stat_lookback_ms=settings.stat_lookback_s * 1000,
            locks=None
            if redis is None
            else FetchLocks(redis, settings.instance_id, lease_s=settings.fetch_lock_lease_s),
        )
        runtime = cls(settings, db, store, origin, engine, catalog, redis)
        if sweep:
            runtime._sweeper = asyncio.create_task(runtime._sweep_forever())
        return runtime

    async def sweep_once(self) -> None:
        now = self.engine.clock()
        report = await self.engine.blocks.sweep(now)
        rows = await self.engine.aggregates.sweep(now)
        if report.expired or report.evicted or rows:
            logger.info(
                "sweep: %d blocks expired, %d evicted (%d bytes), %d aggregate rows dropped",
                report.expired,
                report.evicted,
                report.bytes_freed,
                rows,
            )

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                await self.sweep_once()
            except Exception:
                logger.exception("sweep failed; retrying at the next interval")

    async def close(self) -> None:
        """Stop the sweeper, then close every resource even if one of them fails."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.db.close)
            if self.redis is not None:
                stack.push_async_callback(self.redis.close)
            stack.push_async_callback(self.store.close)
            stack.push_async_callback(self.origin.close)
            # Run first (the stack unwinds last in, first out): nothing in flight may
            # reach for the origin, the store or the database after they close.
            stack.push_async_callback(self.catalog.close)
            stack.push_async_callback(self.engine.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
