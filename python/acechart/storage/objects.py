"""The `ObjectStore` interface, the `ObjectInfo` it reports, and the storage errors.

Two implementations satisfy it: `LocalObjectStore` (a directory, the zero-config
default) and `S3ObjectStore` (any S3-compatible service). The block cache and the
export jobs only ever see this protocol, and one conformance suite runs against
both, so the rules every backend enforces live here: which keys are valid, which
metadata survives a round trip, and what each method does at the edges.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from acechart.errors import AcechartError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONTENT_TYPE",
    "MAX_KEY_BYTES",
    "CorruptObject",
    "InvalidKey",
    "InvalidMetadata",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "StorageError",
    "check_range",
    "validate_key",
    "validate_metadata",
    "validate_prefix",
]

#: S3's limit on a key, in UTF-8 bytes; enforced everywhere so keys stay portable.
MAX_KEY_BYTES = 1024

#: What `head` reports for an object stored without a content type (S3's own default).
DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: Chunk size of `iter_chunks` when the caller does not choose one.
DEFAULT_CHUNK_SIZE = 1 << 20

#: S3 sends user metadata as `x-amz-meta-*` HTTP headers and lower-cases the names;
#: allowing only what survives that unchanged keeps the two backends identical.
_META_KEY = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_META_VALUE = re.compile(r"^[\x20-\x7e]*$")
#: S3 rejects user metadata larger than 2 KB (names and values together).
_MAX_METADATA_BYTES = 2048


class StorageError(AcechartError):
    """A storage backend failed; names the operation and the key it was working on.

    A subclass of `AcechartError` so the server's error middleware answers 503
    with the seed's JSON error body instead of an anonymous 500. Object keys and
    file paths are internal: `str(exc)` (what logs show) names the key and the
    backend's own words, while `message` (what a response or a job's failure
    body shows) says only which operation failed and, given `public`, a reason
    known to hold neither a key nor a path.
    """

    status = 503
    code = "storage_unavailable"

    def __init__(
        self, message: str, *, operation: str, key: str | None = None, public: str | None = None
    ) -> None:
        where = f" {key!r}" if key is not None else ""
        self.detail = f"{operation}{where}: {message}"
        """The whole story, key included: for logs, never for a response."""
        super().__init__(self._public(operation, public))
        self.operation = operation
        self.key = key

    @staticmethod
    def _public(operation: str, reason: str | None) -> str:
        text = f"storage unavailable: {operation} failed"
        return f"{text} ({reason})" if reason else text

    def __str__(self) -> str:
        return self.detail


class ObjectNotFound(StorageError, KeyError):
    """No object under that key; a `KeyError` too, as a missing mapping entry would be."""

    status = 404
    code = "not_found"

    def __init__(self, key: str, *, operation: str = "get") -> None:
        super().__init__("no such object", operation=operation, key=key)
        self.message = "no such object"

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message; keep the readable one (with the key).
        return self.detail


class CorruptObject(StorageError):
    """The stored bytes are unreadable (torn or tampered file): treat as a miss and delete."""

    def __init__(self, key: str, reason: str, *, operation: str = "get") -> None:
        super().__init__(
            f"corrupt object: {reason}",
            operation=operation,
            key=key,
            public="a stored object is damaged",
        )


class InvalidKey(StorageError, ValueError):
    """A key that could escape the store's root, or that one backend could not hold."""

    status = 400
    code = "bad_request"

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"invalid object key: {reason}", operation="validate", key=key)
        self.message = f"invalid object key: {reason}"


class InvalidMetadata(StorageError, ValueError):
    """User metadata that would not survive a round trip through S3 unchanged."""

    status = 400
    code = "bad_request"

    def __init__(self, reason: str, key: str | None = None) -> None:
        super().__init__(f"invalid object metadata: {reason}", operation="validate", key=key)
        self.message = f"invalid object metadata: {reason}"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a backend knows about one stored object.

    `etag` is an opaque version tag without quotes: it changes when the bytes
    change (an MD5 hex digest for single-part uploads on both backends, but do
    not rely on that). `metadata` and `content_type` are None in the results of
    `list`, because S3 listings do not carry them; `head` always fills them in.
    `last_modified` is timezone-aware UTC.
    """

    key: str
    size: int
    etag: str
    last_modified: datetime
    metadata: Mapping[str, str] | None = None
    content_type: str | None = None


@runtime_checkable
class ObjectStore(Protocol):
    """An async key -> bytes store with per-object metadata.

    Keys are `/`-separated paths checked by `validate_key`; an invalid key
    raises `InvalidKey` before any I/O. Writes are atomic: a reader sees the old
    object or the new one, never a mix, and a crash mid-write leaves the old one.
    Backend failures raise `StorageError` naming the operation and key.
    """

    async def get(self, key: str) -> bytes:
        """The whole object; raises `ObjectNotFound`."""
        ...

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes `[start, end)` of the object, clipped to its size; raises `ObjectNotFound`.

        A range starting at or past the end gives `b""`; `start > end` or a
        negative bound is a `ValueError`.
        """
        ...

    def iter_chunks(
        self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        """The object as non-empty chunks of at most `chunk_size` bytes, for streaming.

        Raises `ObjectNotFound` on the first iteration when the key is missing.
        Close the iterator (`aclosing`) when stopping early to free its handle.
        """
        ...

    async def put(
        self,
        key: str,
        data: bytes,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Store `data` under `key`, replacing any object there, atomically."""
        ...

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Store an object too large to hold in memory, read from `chunks`.

        Nothing is visible under `key` until the last chunk is stored; if
        `chunks` raises, the previous object (if any) is left as it was.
        """
        ...

    async def head(self, key: str) -> ObjectInfo | None:
        """Size, etag, time, metadata and content type; None when there is no object."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    async def delete_many(self, keys: Iterable[str]) -> None:
        """Remove many objects in as few requests as the backend allows."""
        ...

    def list(self, prefix: str = "") -> AsyncGenerator[ObjectInfo, None]:
        """Every object whose key starts with `prefix`, in UTF-8 byte order of keys."""
        ...

    async def close(self) -> None:
        """Release connections and handles; the store is unusable afterwards."""
        ...


def validate_key(key: str) -> str:
    """Return `key` if every backend can hold it safely, else raise `InvalidKey`.

    Rejected: empty keys, keys over 1024 UTF-8 bytes, a leading or trailing `/`,
    empty segments (`a//b`), segments starting with `.` (this covers `.` and
    `..`, so no key can climb out of a directory, and keeps the local store's
    hidden temp files out of the key space), backslashes (a path separator on
    Windows) and control characters including NUL.
    """
    if not isinstance(key, str) or not key:
        raise InvalidKey(str(key), "empty")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidKey(key, "not valid UTF-8") from exc
    if size > MAX_KEY_BYTES:
        raise InvalidKey(key, f"longer than {MAX_KEY_BYTES} bytes")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        raise InvalidKey(key, "contains a control character")
    if "\\" in key:
        raise InvalidKey(key, "contains a backslash")
    if key.startswith("/"):
        raise InvalidKey(key, "absolute (starts with '/')")
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey(key, "has an empty path segment")
        if segment.startswith("."):
            raise InvalidKey(key, "has a path segment starting with '.'")
    return key


def validate_prefix(prefix: str) -> str:
    """Return a listing prefix if it could begin a valid key, else raise `InvalidKey`.

    The empty prefix lists everything; a prefix may end with `/` or stop in the
    middle of a segment (`timeseries/site_a/ab`).
    """
    if prefix == "":
        return prefix
    if prefix.startswith("/"):
        raise InvalidKey(prefix, "absolute (starts with '/')")
    validate_key(prefix.removesuffix("/"))
    return prefix


def validate_metadata(metadata: Mapping[str, str] | None, key: str | None = None) -> dict[str, str]:
    """A copy of `metadata` if S3 would return it byte for byte, else raise `InvalidMetadata`.

    Names: lower-case ASCII letters, digits and `-` (S3 lower-cases names and some
    proxies drop headers with `_`). Values: printable ASCII. At most 2 KB in all.
    """
    if not metadata:
        return {}
    out: dict[str, str] = {}
    total = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or not _META_KEY.match(name):
            raise InvalidMetadata(f"name {name!r} must match [a-z0-9][a-z0-9-]*", key)
        if not isinstance(value, str) or not _META_VALUE.match(value):
            raise InvalidMetadata(f"value of {name!r} must be printable ASCII", key)
        total += len(name) + len(value)
        out[name] = value
    if total > _MAX_METADATA_BYTES:
        raise InvalidMetadata(f"{total} bytes, more than {_MAX_METADATA_BYTES}", key)
    return out


def check_range(start: int, end: int) -> None:
    """Reject a byte range `[start, end)` that no backend could serve."""
    if start < 0 or end < 0:
        raise ValueError(f"byte range bounds must be >= 0, got [{start}, {end})")
    if start > end:
        raise ValueError(f"byte range start {start} is after its end {end}")
