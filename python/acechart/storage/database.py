"""`Database`: the one SQLite file of an instance, through aiosqlite.

It holds the seed's tables (aggregates, chart configs, block metadata, jobs,
point metadata; see `migrations.py` for the schema and its units) and offers
the typed, batched operations the engine, the block cache and the catalogue
need, plus a small escape hatch (`execute`, `fetchall`, `transaction`) for the
jobs layer.

Connection settings, and why:
- WAL journal: readers never block the writer and a commit is one append.
- synchronous=NORMAL: in WAL mode a commit survives a process crash; only a
  power cut can lose the last transactions (never corrupt the file), an
  acceptable trade for a cache whose origin still has the data.
- foreign_keys=ON: SQLite's default is off, which would silently ignore any
  foreign key a later migration declares.
- busy_timeout: another process (a second instance, the CLI) holding the write
  lock makes us wait instead of failing at once.

One connection serves everything, so statements from concurrent coroutines are
serialised by an `asyncio.Lock`: without it one coroutine's statement could run
inside another's open transaction. Writes use `BEGIN IMMEDIATE` so the write
lock is taken up front and a transaction never fails half way for a busy
database. Many rows go through one `executemany` or one query, never a
statement per row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self

import aiosqlite

from acechart.storage import tables
from acechart.storage.aggregates import AggregateTable
from acechart.storage.migrations import MIGRATIONS, Migration
from acechart.storage.objects import StorageError
from acechart.storage.records import (
    BlockMeta,
    PointRecord,
)

__all__ = ["MIN_SQLITE_VERSION", "NO_LIMIT", "Database", "DatabaseError", "Row", "Transaction"]

logger = logging.getLogger(__name__)

#: `unixepoch()` in the seed's column defaults needs SQLite 3.38.
MIN_SQLITE_VERSION = (3, 38, 0)

Params = Sequence[Any] | Mapping[str, Any]

#: `LIMIT ?` meaning "no limit" on both backends (SQLite's -1 is an error in PostgreSQL).
NO_LIMIT = 2**62


class Row(Protocol):
    """A result row addressable by column name or index: a `sqlite3.Row` or an `asyncpg.Record`."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Any]: ...


class DatabaseError(StorageError):
    """SQLite failed (disk full, locked past the busy timeout, bad schema version...)."""

    def __init__(self, message: str, *, operation: str, public: str | None = None) -> None:
        # SQLite's own messages name tables and constraints, never keys or paths; a
        # message naming the file passes a `public` one without it.
        super().__init__(message, operation=operation, public=message if public is None else public)


class Transaction:
    """Runs statements inside one `Database.transaction()`; valid only within it."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement; returns the number of rows it changed."""
        async with self._conn.execute(sql, params) as cur:
            return cur.rowcount

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for every parameter row; returns the rows changed in all."""
        async with self._conn.executemany(sql, rows) as cur:
            return cur.rowcount

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All result rows, addressable by column name or index."""
        async with self._conn.execute(sql, params) as cur:
            cur.row_factory = sqlite3.Row
            return list(await cur.fetchall())

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first result row, or None."""
        async with self._conn.execute(sql, params) as cur:
            cur.row_factory = sqlite3.Row
            row: sqlite3.Row | None = await cur.fetchone()
            return row

    async def _tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """All rows as plain tuples: the fastest form for bulk conversion."""
        async with self._conn.execute(sql, params) as cur:
            rows: list[tuple[Any, ...]] = list(await cur.fetchall())  # type: ignore[arg-type]
            return rows


class Database:
    """The SQLite database of one acechart instance. Open with `await Database.open(path)`.

    `PostgresDatabase` (storage/postgres.py) is the shared backend: it overrides the
    connection primitives (`transaction`, `execute`, `fetch*`, open/close, migrate)
    and every typed operation below runs on it unchanged.
    """

    dialect: ClassVar[str] = "sqlite"
    """`sqlite` or `postgresql`: which SQL a caller with a dialect-specific statement sends."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        """Use `Database.open`; this only wraps an already configured connection."""
        self.path = path
        self._conn: aiosqlite.Connection | None = conn
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self.aggregates = AggregateTable(self)
        """The columnar aggregate tier (`aggregate_blocks`)."""
        self.malformed_rows = 0
        """`cache_metadata` rows found malformed and dropped since open."""

    @classmethod
    async def open(cls, path: str | os.PathLike[str], *, busy_timeout_ms: int = 5000) -> Self:
        """Open (creating if needed) the database at `path` and bring its schema up to date."""
        if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
            raise DatabaseError(
                f"SQLite {sqlite3.sqlite_version} is too old; acechart needs "
                f"{'.'.join(map(str, MIN_SQLITE_VERSION))} or newer",
                operation="open",
            )
        path = Path(path)
        try:
            await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
            conn = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise DatabaseError(
                f"cannot open {path}: {exc}",
                operation="open",
                public=f"cannot open the database ({type(exc).__name__})",
            ) from exc
        db = cls(conn, path)
        try:
            await db._configure(busy_timeout_ms)
            await db._migrate()
        except BaseException:
            await conn.close()
            raise
        return db

    async def close(self) -> None:
        """Let SQLite refresh its planner statistics, then close; idempotent."""
        async with self._lock:
            conn, self._conn = self._conn, None
            if conn is None:
                return
            try:
                await conn.execute("PRAGMA optimize")
            except sqlite3.Error as exc:
                logger.debug("PRAGMA optimize failed on close: %s", exc)
            await conn.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"

    # --- transactions and the escape hatch --------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """`async with db.transaction() as tx:` runs `tx`'s statements atomically.

        Commits when the block ends, rolls back if it raises (or is cancelled).
        Inside the block use only `tx`: calling the database's own methods from
        the same task would wait for the lock it holds, so it raises instead.
        """
        async with self._locked("transaction") as conn:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield Transaction(conn)
                await conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    await asyncio.shield(conn.rollback())
                raise

    async def execute(self, sql: str, params: Params = ()) -> int:
        """Run one statement in its own transaction; returns the number of rows changed."""
        async with self._locked("execute") as conn:
            return await Transaction(conn).execute(sql, params)

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        """Run one statement for many parameter rows, all in one transaction."""
        async with self.transaction() as tx:
            return await tx.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        """All rows of one query, addressable by column name or index."""
        async with self._locked("fetchall") as conn:
            return await Transaction(conn).fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        """The first row of one query, or None."""
        async with self._locked("fetchone") as conn:
            return await Transaction(conn).fetchone(sql, params)

    async def fetch_tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Rows as plain tuples (cheaper than `sqlite3.Row` for bulk conversions)."""
        async with self._locked("fetch") as conn:
            return await Transaction(conn)._tuples(sql, params)

    async def set_trace(self, callback: Callable[[str], object] | None) -> None:
        """Call `callback` with every statement run from now on (None: stop); for tests
        and debugging. Each row of an `executemany` counts as one statement."""
        async with self._locked("set_trace") as conn:
            await conn.set_trace_callback(callback)  # type: ignore[arg-type]

    async def size_bytes(self) -> int:
        """Bytes the database takes: the file with its WAL (recent writes until a checkpoint)."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += (await asyncio.to_thread(os.stat, f"{self.path}{suffix}")).st_size
        return total

    async def schema_version(self) -> int:
        """The highest migration applied to this file."""
        row = await self.fetchone("SELECT MAX(version) FROM schema_version")
        return int(row[0]) if row is not None and row[0] is not None else 0

    # --- block metadata (cache_metadata) ----------------------------------------

    async def upsert_block_meta(self, metas: Iterable[BlockMeta], *, now: int | None = None) -> int:
        """Insert or update block rows in one transaction; returns how many.

        A rewrite keeps `created_at` and `hit_count`, sets `last_accessed` to
        `now` (a write is a use) and increments `version`.
        """
        now = _now(now)
        params = [tables.block_params(meta, now) for meta in metas]
        if not params:
            return 0
        async with self.transaction() as tx:
            await tx.executemany(tables.BLOCK_UPSERT, params)
        return len(params)

    async def get_block_meta(self, keys: Iterable[str]) -> dict[str, BlockMeta]:
        """The rows of the given block keys that exist, through one query."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        rows = await self.fetch_tuples(
            f"SELECT {tables.BLOCK_COLUMNS} FROM cache_metadata"
            " WHERE cache_key IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),),
        )
        return {meta.key: meta for meta in await self._blocks_of(rows)}

    async def touch_blocks(self, keys: Iterable[str], *, now: int | None = None) -> int:
        """Count one hit and set `last_accessed` for each key, in one statement."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return 0
        return await self.execute(
            "UPDATE cache_metadata SET hit_count = hit_count + 1, last_accessed = ?"
            " WHERE cache_key IN (SELECT value FROM json_each(?))",
            (_now(now), json.dumps(wanted)),
        )

    async def expired_blocks(
        self, now: int | None = None, *, limit: int | None = None
    ) -> list[BlockMeta]:
        """Blocks whose `expires_at` has passed, soonest expired first."""
        return await self._block_query(
            f"SELECT {tables.BLOCK_COLUMNS} FROM cache_metadata"
            " WHERE point_name IS NOT NULL AND expires_at <= ?"
            " ORDER BY expires_at, cache_key LIMIT ?",
            (_now(now), NO_LIMIT if limit is None else limit),
        )

    async def lru_blocks_over_budget(self, budget_bytes: int) -> list[BlockMeta]:
        """The least recently used blocks to evict so the rest fit in `budget_bytes`.

        Blocks are kept from the most recently used down while their sizes add
        up to at most the budget; the rest are returned, least recent first.
        One window-function query, whatever the number of blocks.
        """
        return await self._block_query(
            "SELECT * FROM ("
            f" SELECT {tables.BLOCK_COLUMNS}, SUM(COALESCE(size_bytes, 0)) OVER ("
            "  ORDER BY last_accessed DESC, cache_key DESC"
            "  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS kept_bytes"
            " FROM cache_metadata WHERE point_name IS NOT NULL"
            ") AS ranked WHERE kept_bytes > ? ORDER BY last_accessed, cache_key",
            (budget_bytes,),
        )

    async def delete_block_meta(self, keys: Iterable[str]) -> int:
        """Remove block rows in one statement; returns how many existed."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return 0
        return await self.execute(
            "DELETE FROM cache_metadata WHERE cache_key IN (SELECT value FROM json_each(?))",
            (json.dumps(wanted),),
        )

    async def total_block_bytes(self) -> int:
        """Bytes of all blocks the metadata knows of (for the size budget and metrics)."""
        row = await self.fetchone(
            "SELECT COALESCE(SUM(size_bytes), 0) FROM cache_metadata WHERE point_name IS NOT NULL"
        )
        return int(row[0]) if row is not None else 0

    # --- point metadata ---------------------------------------------------------

    async def upsert_points(
        self,
        site: str,
        rows: Iterable[PointRecord],
        *,
        replace: bool = False,
        now: int | None = None,
    ) -> int:
        """Insert or update a site's points in one transaction; returns how many.

        With `replace=True` the rows are the site's whole catalogue and points
        missing from it are deleted (the origin removed them).
        """
        now = _now(now)
        params = [tables.point_params(site, row, now) for row in rows]
        async with self.transaction() as tx:
            if params:
                await tx.executemany(tables.POINT_UPSERT, params)
            if replace:
                await tx.execute(
                    "DELETE FROM point_metadata WHERE site_id = ?"
                    " AND point_name NOT IN (SELECT value FROM json_each(?))",
                    (site, json.dumps([p[1] for p in params])),
                )
        return len(params)

    async def points(
        self,
        site: str,
        q: str | None = None,
        equipment: str | None = None,
        tag: str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[PointRecord]:
        """A site's points, by name, filtered by every filter given.

        `q`: case-insensitive (ASCII) substring of the point or display name;
        `equipment`: exact equipment; `tag`: one of the marker tags.
        """
        where = ["site_id = ?"]
        params: list[Any] = [site]
        if q:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where.append("(point_name LIKE ? ESCAPE '\\' OR display_name LIKE ? ESCAPE '\\')")
            params += [pattern, pattern]
        if equipment is not None:
            where.append("equipment = ?")
            params.append(equipment)
        if tag is not None:
            where.append("EXISTS (SELECT 1 FROM json_each(marker_tags) WHERE value = ?)")
            params.append(tag)
        params += [NO_LIMIT if limit is None else limit, offset]
        rows = await self.fetch_tuples(
            f"SELECT {tables.POINT_COLUMNS} FROM point_metadata WHERE {' AND '.join(where)}"
            " ORDER BY point_name LIMIT ? OFFSET ?",
            params,
        )
        return [tables.point_from_row(row) for row in rows]

    async def points_updated_at(self, site: str) -> int | None:
        """When the site's catalogue was last written (unix s), None if never."""
        row = await self.fetchone(
            "SELECT MAX(last_updated) FROM point_metadata WHERE site_id = ?", (site,)
        )
        return None if row is None or row[0] is None else int(row[0])

    # --- internals --------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _locked(self, operation: str) -> AsyncIterator[aiosqlite.Connection]:
        """Exclusive use of the connection; SQLite errors become `DatabaseError`."""
        task = asyncio.current_task()
        if self._owner is not None and self._owner is task:
            raise RuntimeError(
                f"Database.{operation}() called inside db.transaction() by the same task;"
                " use the transaction handle instead"
            )
        async with self._lock:
            conn = self._conn
            if conn is None:
                raise DatabaseError("database is closed", operation=operation)
            self._owner = task
            try:
                if conn.in_transaction:
                    # Only possible if a cancelled caller's rollback was itself cancelled.
                    logger.warning("%s: rolling back a transaction left open", self.path)
                    await conn.rollback()
                yield conn
            except sqlite3.Error as exc:
                raise DatabaseError(f"{type(exc).__name__}: {exc}", operation=operation) from exc
            finally:
                self._owner = None

    async def _configure(self, busy_timeout_ms: int) -> None:
        async with self._locked("open") as conn:
            await conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            async with conn.execute("PRAGMA journal_mode = WAL") as cur:
                row = await cur.fetchone()
            if row is None or str(row[0]).lower() != "wal":
                logger.warning("%s: WAL journal unavailable, running in %s mode", self.path, row)
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")

    async def _migrate(self) -> None:
        """Apply missing migrations, each in its own transaction with its version row."""
        latest = MIGRATIONS[-1].version
        await self.execute(_SCHEMA_VERSION_TABLE)
        for migration in MIGRATIONS:
            async with self.transaction() as tx:
                newest = await tx.fetchone("SELECT MAX(version) FROM schema_version")
                if newest is not None and newest[0] is not None and newest[0] > latest:
                    raise DatabaseError(
                        f"{self.path} has schema version {newest[0]}, newer than this"
                        f" acechart knows ({latest}); upgrade acechart",
                        operation="migrate",
                        public=f"the database's schema is newer than this acechart ({latest})",
                    )
                applied = await tx.fetchone(
                    "SELECT checksum FROM schema_version WHERE version = ?", (migration.version,)
                )
                if applied is None:
                    await _apply(tx, migration, self.dialect)
                    logger.info(
                        "%s: applied migration %d (%s)",
                        self.path,
                        migration.version,
                        migration.name,
                    )
                elif applied[0] != migration.checksum:
                    raise DatabaseError(
                        f"migration {migration.version} ({migration.name}) differs from the one"
                        f" applied to {self.path}: released migrations must never be edited",
                        operation="migrate",
                        public=f"migration {migration.version} differs from the one applied",
                    )

    async def _block_query(self, sql: str, params: Params) -> list[BlockMeta]:
        return await self._blocks_of(await self.fetch_tuples(sql, params))

    async def _blocks_of(self, rows: Sequence[tuple[Any, ...]]) -> list[BlockMeta]:
        """The rows as `BlockMeta`, dropping (and deleting) any that describe no block.

        A row is only a cache of what the object store and the origin hold, so a
        malformed one is a miss, never a 500 at every read of its key: it is logged
        and deleted, and the block is fetched and written again.
        """
        metas: list[BlockMeta] = []
        bad: list[str] = []
        for row in rows:
            try:
                metas.append(tables.block_from_row(row))
            except tables.MalformedRow as exc:
                logger.error("malformed cache_metadata row %r (%s); dropping it", row[0], exc)
                bad.append(str(row[0]))
        if bad:
            self.malformed_rows += len(bad)
            await self.delete_block_meta(bad)
        return metas


async def _apply(tx: Transaction, migration: Migration, dialect: str) -> None:
    for statement in migration.statements_for(dialect):
        await tx.execute(statement)
    await tx.execute(
        "INSERT INTO schema_version (version, name, checksum) VALUES (?, ?, ?)",
        (migration.version, migration.name, migration.checksum),
    )


_SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  checksum TEXT NOT NULL,
  applied_at INTEGER NOT NULL DEFAULT (unixepoch())
)
"""


def _now(now: int | None) -> int:
    return int(time.time()) if now is None else int(now)
