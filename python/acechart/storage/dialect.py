"""SQLite statements rewritten for PostgreSQL: the one place the two dialects differ.

Every statement in acechart (migrations, the typed tables, the job queue) is
written once, in the SQLite dialect the embedded default runs. `to_postgres`
rewrites it for PostgreSQL when the shared backend is configured, so the
migrations and queries are kept once and a change to one is a change to both.
The rewrite is purely textual, cached per statement text, and covers exactly
the constructs acechart uses:

- placeholders: `?` and `?NNN` become `$n` / `$NNN`;
- `unixepoch()` becomes the epoch seconds of `now()`;
- `json_each(x)` becomes `json_array_elements_text(x::json)` (its column is
  `value` in both), `json_extract(x, '$[N]')` / `'$.a.b'` the `->>` / `#>>`
  operators;
- `INSERT OR IGNORE` becomes `ON CONFLICT DO NOTHING`; the scalar two-argument
  `MAX(a, b)` / `MIN(a, b)` become `GREATEST` / `LEAST`; `rowid` (insertion
  order of a table that never reuses one) becomes `ctid`; `CROSS JOIN .. ON`
  (SQLite's way to fix a join order) becomes `JOIN .. ON`;
- `LIKE` becomes `ILIKE`: SQLite's LIKE ignores ASCII case, PostgreSQL's does not;
- in DDL, SQLite's types become PostgreSQL's: INTEGER -> BIGINT (timestamps in
  ms overflow 32 bits), REAL -> DOUBLE PRECISION, BLOB -> BYTEA, BOOLEAN ->
  BIGINT (SQLite stores 0/1, and callers bind integers), `INTEGER PRIMARY KEY`
  -> BIGSERIAL, and TEXT -> TEXT COLLATE "C", so text sorts by code point on
  both backends whatever the server's locale; `WITHOUT ROWID` is dropped.

A construct with no textual equivalent (`json_valid`) is given by the migration
itself as a PostgreSQL variant of that statement (`Migration.postgres`).
"""

from __future__ import annotations

import functools
import re

__all__ = ["to_postgres"]

_DDL = re.compile(r"^\s*(CREATE\s+TABLE|ALTER\s+TABLE)\b", re.IGNORECASE)
_DDL_TYPES = (
    (
        re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.IGNORECASE),
        "BIGSERIAL PRIMARY KEY",
    ),
    (re.compile(r"\bINTEGER\b", re.IGNORECASE), "BIGINT"),
    (re.compile(r"\bREAL\b", re.IGNORECASE), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.IGNORECASE), "BYTEA"),
    (re.compile(r"\bBOOLEAN\b", re.IGNORECASE), "BIGINT"),
    (re.compile(r"\bTEXT\b", re.IGNORECASE), 'TEXT COLLATE "C"'),
    (re.compile(r"\s*\bWITHOUT\s+ROWID\b", re.IGNORECASE), ""),
)
_UNIXEPOCH = re.compile(r"\bunixepoch\(\s*\)", re.IGNORECASE)
_JSON_EACH = re.compile(r"\bjson_each\(([^()]+)\)", re.IGNORECASE)
_JSON_INDEX = re.compile(r"\bjson_extract\(([^(),]+),\s*'\$\[(\d+)\]'\)", re.IGNORECASE)
_JSON_PATH = re.compile(r"\bjson_extract\(([^(),]+),\s*'\$((?:\.\w+)+)'\)", re.IGNORECASE)
_INSERT_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\b", re.IGNORECASE)
_RETURNING = re.compile(r"\bRETURNING\b", re.IGNORECASE)
_SCALAR_MINMAX = re.compile(r"\b(MAX|MIN)\(([^(),]+),([^(),]+)\)", re.IGNORECASE)
_ROWID = re.compile(r"\browid\b", re.IGNORECASE)
_CROSS_JOIN = re.compile(r"\bCROSS\s+JOIN\b", re.IGNORECASE)
_LIKE = re.compile(r"\bLIKE\b", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def to_postgres(sql: str) -> str:
    """The PostgreSQL form of one SQLite statement (see the module docstring)."""
    out = _placeholders(sql)
    if _DDL.match(out):
        for pattern, replacement in _DDL_TYPES:
            out = pattern.sub(replacement, out)
    out = _UNIXEPOCH.sub("CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)", out)
    out = _JSON_INDEX.sub(r"(CAST(\1 AS json) ->> \2)", out)
    out = _JSON_PATH.sub(
        lambda m: f"(CAST({m[1]} AS json) #>> '{{{','.join(m[2].strip('.').split('.'))}}}')", out
    )
    out = _JSON_EACH.sub(r"json_array_elements_text(CAST(\1 AS json))", out)
    out = _SCALAR_MINMAX.sub(
        lambda m: f"{'GREATEST' if m[1].upper() == 'MAX' else 'LEAST'}({m[2]},{m[3]})", out
    )
    if _INSERT_OR_IGNORE.search(out):
        out = _INSERT_OR_IGNORE.sub("INSERT", out)
        returning = _RETURNING.search(out)
        if returning is None:
            out = out.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
        else:
            out = f"{out[: returning.start()]}ON CONFLICT DO NOTHING {out[returning.start() :]}"
    out = _ROWID.sub("ctid", out)
    out = _CROSS_JOIN.sub("JOIN", out)
    return _LIKE.sub("ILIKE", out)


def _placeholders(sql: str) -> str:
    """`?` -> `$1, $2, ...` and `?NNN` -> `$NNN`, outside string literals and comments."""
    out: list[str] = []
    n = 0
    i = 0
    length = len(sql)
    while i < length:
        c = sql[i]
        if c == "'":
            end = sql.find("'", i + 1)
            while end != -1 and end + 1 < length and sql[end + 1] == "'":
                end = sql.find("'", end + 2)
            end = length - 1 if end == -1 else end
            out.append(sql[i : end + 1])
            i = end + 1
        elif c == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = length if end == -1 else end
            out.append(sql[i:end])
            i = end
        elif c == "?":
            j = i + 1
            while j < length and sql[j].isdigit():
                j += 1
            if j > i + 1:
                out.append("$" + sql[i + 1 : j])
            else:
                n += 1
                out.append(f"${n}")
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)
