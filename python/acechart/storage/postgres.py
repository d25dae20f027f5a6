"""`PostgresDatabase`: the shared backend of `Database`, on PostgreSQL through asyncpg.

Every instance of a scaled-out deployment opens the same database. The class
overrides only the connection primitives of `Database` (`transaction`,
`execute`, `fetch*`, open, close, migrate); the typed operations (blocks,
points, aggregates) and the job queue's statements run on it unchanged, each
statement rewritten once by `dialect.to_postgres`.

Why it behaves like the SQLite backend:
- Write transactions are serialised across every instance by one transaction-
  scoped advisory lock, as SQLite's `BEGIN IMMEDIATE` serialises writers of
  one file. Code that reads, decides and writes inside `db.transaction()` (the
  job queue's enqueue with deduplication, its guarded state changes) is then
  exactly as safe with N instances as with one, without every caller learning
  about serialisation failures. Single statements outside a transaction run
  concurrently, guarded by PostgreSQL's row locks.
- Migrations take a session advisory lock, so N instances starting together
  migrate once; the per-version checksum check is the same.
- Reads run on any pooled connection, in parallel (SQLite's one connection
  serialises them; PostgreSQL need not).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import asyncpg

from acechart.storage.database import Database, DatabaseError, Params, Row, Transaction
from acechart.storage.dialect import to_postgres

__all__ = ["PostgresDatabase"]

logger = logging.getLogger(__name__)

#: Keys of the advisory locks (any two fixed 64-bit numbers, unique to acechart).
_WRITE_LOCK = 0x61636563_68617274  # "acechart"
_MIGRATE_LOCK = _WRITE_LOCK + 1

_COUNT = re.compile(r"(\d+)$")


def _rowcount(status: str) -> int:
    """Rows changed, from asyncpg's command tag (`UPDATE 3`, `INSERT 0 1`, `DELETE 0`)."""
    match = _COUNT.search(status or "")
    return int(match[1]) if match else 0


def _positional(params: Params) -> Sequence[Any]:
    if isinstance(params, dict):
        raise TypeError("PostgresDatabase takes positional parameters only")
    return list(params)


class _PgTransaction(Transaction):
    """`Transaction` on one pooled asyncpg connection."""

    def __init__(self, conn: Any, trace: Callable[[str], object] | None) -> None:
        self._pg = conn
        self._trace = trace

    def _sql(self, sql: str) -> str:
        if self._trace is not None:
            self._trace(sql)
        return to_postgres(sql)

    async def execute(self, sql: str, params: Params = ()) -> int:
        return _rowcount(await self._pg.execute(self._sql(sql), *_positional(params)))

    async def executemany(self, sql: str, rows: Iterable[Params]) -> int:
        batch = [_positional(r) for r in rows]
        if not batch:
            return 0
        if self._trace is not None:
            for _ in batch[1:]:
                self._trace(sql)
        await self._pg.executemany(self._sql(sql), batch)
        return len(batch)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        rows: list[Row] = await self._pg.fetch(self._sql(sql), *_positional(params))
        return rows

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        row: Row | None = await self._pg.fetchrow(self._sql(sql), *_positional(params))
        return row

    async def _tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in await self._pg.fetch(self._sql(sql), *_positional(params))]


class PostgresDatabase(Database):
    """The tables in a shared PostgreSQL database; open with `await PostgresDatabase.open_url`."""

    dialect: ClassVar[str] = "postgresql"

    def __init__(self, pool: Any, url: str) -> None:
        """Use `open_url`; this only wraps an open pool."""
        self._pool: Any = pool
        self.url = url
        self._owners: set[asyncio.Task[Any]] = set()
        self._trace: Callable[[str], object] | None = None
        super().__init__(None, _redacted(url))  # type: ignore[arg-type]

    @classmethod
    async def open_url(cls, url: str, *, pool_size: int = 10, timeout_s: float = 10.0) -> Self:
        """Connect a pool to `url` (`postgresql://...`) and bring the schema up to date."""
        try:
            pool = await asyncpg.create_pool(
                url,
                min_size=1,
                max_size=max(2, pool_size),  # migrate holds one while it runs
                timeout=timeout_s,
                command_timeout=None,
                # Statements are cached per connection; the cache key is the text.
                statement_cache_size=512,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            raise DatabaseError(
                f"cannot connect to PostgreSQL at {_redacted(url)}: {type(exc).__name__}: {exc}",
                operation="open",
                public=f"cannot connect to the database ({type(exc).__name__})",
            ) from exc
        db = cls(pool, url)
        try:
            await db._migrate()
        except BaseException:
            await pool.close()
            raise
        return db

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    def __repr__(self) -> str:
        return f"PostgresDatabase({str(self.path)!r})"

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._connection("transaction") as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _WRITE_LOCK)
            yield _PgTransaction(conn, self._trace)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._connection("execute") as conn:
            return await _PgTransaction(conn, self._trace).execute(sql, params)

    async def fetchall(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._connection("fetchall") as conn:
            return await _PgTransaction(conn, self._trace).fetchall(sql, params)

    async def fetchone(self, sql: str, params: Params = ()) -> Row | None:
        async with self._connection("fetchone") as conn:
            return await _PgTransaction(conn, self._trace).fetchone(sql, params)

    async def fetch_tuples(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        async with self._connection("fetch") as conn:
            return await _PgTransaction(conn, self._trace)._tuples(sql, params)

    async def set_trace(self, callback: Callable[[str], object] | None) -> None:
        # Transactions are traced as SQLite's are: BEGIN, the statements, COMMIT.
        self._trace = callback

    async def size_bytes(self) -> int:
        row = await self.fetchone("SELECT pg_database_size(current_database())")
        return 0 if row is None else int(row[0])

    async def ping(self) -> None:
        """One round trip to the server (for `/readyz`)."""
        await self.fetchone("SELECT 1")

    @contextlib.asynccontextmanager
    async def _connection(self, operation: str) -> AsyncIterator[Any]:
        """A pooled connection for one operation; asyncpg errors become `DatabaseError`."""
        task = asyncio.current_task()
        if task is not None and task in self._owners:
            raise RuntimeError(
                f"Database.{operation}() called inside db.transaction() by the same task;"
                " use the transaction handle instead"
            )
        pool = self._pool
        if pool is None:
            raise DatabaseError("database is closed", operation=operation)
        try:
            async with pool.acquire() as conn:
                if task is not None and operation == "transaction":
                    self._owners.add(task)
                    if self._trace is not None:
                        self._trace("BEGIN")
                try:
                    yield conn
                finally:
                    if task is not None and operation == "transaction":
                        self._owners.discard(task)
        except asyncpg.PostgresError as exc:
            raise DatabaseError(_message(exc), operation=operation) from exc
        except (OSError, asyncpg.InterfaceError) as exc:
            raise DatabaseError(
                f"PostgreSQL unreachable: {type(exc).__name__}: {exc}", operation=operation
            ) from exc

    async def _migrate(self) -> None:
        async with self._connection("migrate") as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATE_LOCK)
            try:
                await super()._migrate()
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATE_LOCK)


#: Constraint failures named as SQLite names them, so a caller (or a log search) sees the
#: same words on both backends.
_CONSTRAINTS = {
    "UniqueViolationError": "UNIQUE constraint failed",
    "CheckViolationError": "CHECK constraint failed",
    "NotNullViolationError": "NOT NULL constraint failed",
    "ForeignKeyViolationError": "FOREIGN KEY constraint failed",
}


def _message(exc: BaseException) -> str:
    name = type(exc).__name__
    first = str(exc).splitlines()[0] if str(exc) else ""
    if name in _CONSTRAINTS:
        return f"{_CONSTRAINTS[name]}: {first}"
    return f"{name}: {first}"


def _redacted(url: str) -> str:
    """The URL without its password, for logs and reprs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
