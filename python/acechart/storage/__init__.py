"""Storage backends: the SQLite `Database` and the `ObjectStore` implementations.

Everything that persists goes through here: aggregates, block and job metadata
and the point catalogue in one SQLite file; block and export bytes in an object
store, a local directory by default or any S3-compatible service when one
machine is outgrown. Higher layers depend on these interfaces, never on
aiosqlite or aiobotocore directly. `S3ObjectStore` is imported lazily so a
deployment without S3 never loads botocore.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acechart.storage.database import Database, DatabaseError, Transaction
from acechart.storage.keys import block_key, export_key, point_hash
from acechart.storage.local import LocalObjectStore
from acechart.storage.objects import (
    CorruptObject,
    InvalidKey,
    InvalidMetadata,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageError,
)
from acechart.storage.records import AGG_LEVELS, TIERS, BlockMeta, PointRecord

if TYPE_CHECKING:
    from acechart.storage.s3 import S3ObjectStore

__all__ = [
    "AGG_LEVELS",
    "TIERS",
    "BlockMeta",
    "CorruptObject",
    "Database",
    "DatabaseError",
    "InvalidKey",
    "InvalidMetadata",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "PointRecord",
    "S3ObjectStore",
    "StorageError",
    "Transaction",
    "block_key",
    "export_key",
    "point_hash",
]


def __getattr__(name: str) -> Any:
    if name == "S3ObjectStore":
        from acechart.storage.s3 import S3ObjectStore

        return S3ObjectStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
