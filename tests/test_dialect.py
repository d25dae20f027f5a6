"""The SQLite -> PostgreSQL rewrite (storage/dialect.py) and choosing the backend by settings.

The rewrite's real proof is the rest of the suite: every module in
`tests.backends.SHARED_MODULES` runs its statements on PostgreSQL. These pin the
rules one by one, so a regression names the construct it broke.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from acechart.errors import ConfigError
from acechart.runtime import open_database
from acechart.settings import Settings
from acechart.storage.dialect import to_postgres
from acechart.storage.migrations import MIGRATIONS, Migration
from tests.backends import PostgresServer


def test_placeholders_are_numbered_outside_literals_and_comments() -> None:
    assert to_postgres("SELECT ? , '?', ? -- why?\n, ?") == "SELECT $1 , '?', $2 -- why?\n, $3"
    assert to_postgres("VALUES (?1, ?2, ?1, 'it''s ?')") == "VALUES ($1, $2, $1, 'it''s ?')"


def test_insert_or_ignore_becomes_on_conflict() -> None:
    assert to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?)") == (
        "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING"
    )
    assert to_postgres("INSERT OR IGNORE INTO t (a) VALUES (?) RETURNING a") == (
        "INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING a"
    )


def test_scalar_max_min_but_not_aggregates() -> None:
    assert to_postgres("SET p = MAX(p, ?), a = MIN(a - 1, 0)") == (
        "SET p = GREATEST(p, $1), a = LEAST(a - 1, 0)"
    )
    assert to_postgres("SELECT MAX(version) FROM v") == "SELECT MAX(version) FROM v"


def test_json_functions() -> None:
    assert to_postgres("x IN (SELECT value FROM json_each(?))") == (
        "x IN (SELECT value FROM json_array_elements_text(CAST($1 AS json)))"
    )
    assert to_postgres("json_extract(value, '$[2]')") == "(CAST(value AS json) ->> 2)"
    assert to_postgres("json_extract(r, '$.metadata.notifyUrl')") == (
        "(CAST(r AS json) #>> '{metadata,notifyUrl}')"
    )


def test_ddl_types_and_time() -> None:
    ddl = to_postgres(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER, r REAL, b BLOB, ok BOOLEAN,"
        " s TEXT NOT NULL, at INTEGER DEFAULT (unixepoch())) WITHOUT ROWID"
    )
    assert ddl == (
        "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, n BIGINT, r DOUBLE PRECISION, b BYTEA,"
        ' ok BIGINT, s TEXT COLLATE "C" NOT NULL,'
        " at BIGINT DEFAULT (CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)))"
    )
    # Outside DDL the words are left alone (a column may be called `text`).
    assert to_postgres("SELECT text FROM t WHERE n LIKE ?") == "SELECT text FROM t WHERE n ILIKE $1"


def test_migrations_have_a_postgres_form_and_one_checksum() -> None:
    for migration in MIGRATIONS:
        pg = migration.statements_for("postgresql")
        assert len(pg) == len(migration.statements)
        assert all("json_valid" not in to_postgres(s) for s in pg)
    # The variant is outside the checksum: the SQLite text is the migration's identity.
    seventh = MIGRATIONS[6]
    assert seventh.postgres
    assert seventh.checksum == Migration(seventh.version, seventh.name, seventh.statements).checksum


def test_settings_refuse_other_database_and_redis_urls() -> None:
    with pytest.raises(ConfigError, match="ACECHART_DATABASE_URL"):
        Settings.from_env({"ACECHART_DATABASE_URL": "mysql://db/x"})
    with pytest.raises(ConfigError, match="ACECHART_REDIS_URL"):
        Settings.from_env({}, redis_url="http://127.0.0.1:6379")
    assert Settings.from_env({}).instance_id  # host name and pid by default


async def test_database_url_selects_postgresql(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.new_database()
    try:
        db = await open_database(Settings.from_env({}, database_url=url, data_dir=str(tmp_path)))
        async with db:
            assert db.dialect == "postgresql"
            assert await db.schema_version() == len(MIGRATIONS)
            assert "***" not in repr(db)  # no password in this URL, nothing to hide
        embedded = await open_database(Settings.from_env({}, data_dir=str(tmp_path)))
        async with embedded:
            assert embedded.dialect == "sqlite"
            assert (tmp_path / "acechart.db").exists()
    finally:
        postgres_server.drop_all()


async def test_unreachable_postgresql_is_a_clear_error(tmp_path: Path) -> None:
    from acechart.storage.database import DatabaseError
    from tests.backends import _free_port

    url = f"postgresql://acechart:secret@127.0.0.1:{_free_port()}/nothing"
    with pytest.raises(DatabaseError, match="cannot connect") as caught:
        await open_database(Settings.from_env({}, database_url=url, data_dir=str(tmp_path)))
    assert "secret" not in str(caught.value)
