"""`LocalObjectStore`: objects as files under one directory, written atomically.

A key maps to the path of the same name under the root (`timeseries/s/ab12/2025-01.blk`
is that file), so the tree can be inspected and backed up with ordinary tools.

File format. Each file holds the object's bytes followed by a footer:

```
<data> <metadata JSON, UTF-8> <u32 little-endian: JSON length> <8-byte magic>
```

One file per object rather than data plus a sidecar JSON file, because then a
single `os.replace` publishes the bytes and their metadata together: with two
files a crash between the two renames would pair new bytes with old metadata
(or the reverse), and sidecar names would take part of the key space. A footer
rather than a header so that `put_stream` can write data before it knows the
size and digest. The cost is one small extra read for ranges and listings.

Atomicity. A write goes to a hidden temp file in the destination directory
(`.<random>.tmp`, a name no valid key can have), is flushed and fsync'd, renamed
over the destination with `os.replace`, and the directory is fsync'd so the
rename itself survives a power cut. A crash at any point leaves either the old
object or the new one; a leftover temp file is invisible to `list` and removed
by `remove_stale_temp_files` (run by `open`). Readers that opened the old file
keep reading the old bytes after a rename, so `iter_chunks` streams a snapshot.

Every blocking call runs in a worker thread (`asyncio.to_thread`), never on the
event loop.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import errno
import hashlib
import json
import logging
import os
import stat
import struct
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Self

from acechart.storage.objects import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONTENT_TYPE,
    CorruptObject,
    InvalidKey,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    check_range,
    validate_key,
    validate_metadata,
    validate_prefix,
)

__all__ = ["LocalObjectStore"]

logger = logging.getLogger(__name__)

_MAGIC = b"\x89ACEOBJ1"
_TRAILER = struct.Struct("<I8s")
_TEMP_SUFFIX = ".tmp"
#: `put_stream` gathers chunks into writes of about this size, one thread hop each.
_WRITE_BUFFER = 1 << 20
#: Objects described per thread hop while listing.
_LIST_BATCH = 256
#: Attempts at creating a temp file when a concurrent delete prunes its directory.
_CREATE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class _Footer:
    size: int
    etag: str
    content_type: str
    metadata: dict[str, str]


class LocalObjectStore:
    """An `ObjectStore` in a local directory (the default, under the data directory)."""

    def __init__(self, root: str | os.PathLike[str], *, stale_temp_age_s: float = 3600.0) -> None:
        """Remember the root; no I/O until `open()` (writes create directories anyway)."""
        self.root = Path(os.path.abspath(root))
        self.stale_temp_age_s = stale_temp_age_s

    async def open(self) -> Self:
        """Create the root if needed and remove temp files a crash left long ago."""
        await asyncio.to_thread(self.root.mkdir, parents=True, exist_ok=True)
        removed = await self.remove_stale_temp_files(self.stale_temp_age_s)
        if removed:
            logger.info("removed %d stale temp files under %s", removed, self.root)
        return self

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    async def close(self) -> None:
        """Nothing to release: files are opened per call and closed by it."""

    # --- reads ------------------------------------------------------------------

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        return await asyncio.to_thread(self._read_all, path, key)

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        check_range(start, end)
        path = self._path(key)
        return await asyncio.to_thread(self._read_range, path, key, start, end)

    async def iter_chunks(
        self, key: str, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> AsyncGenerator[bytes, None]:
        if chunk_size <= 0:
            raise ValueError(f"chunk_size must be positive, got {chunk_size}")
        path = self._path(key)
        # The open runs in a thread that finishes even if this task is cancelled (a client
        # gone mid-download): shielded, so a file opened for nobody is closed, not leaked.
        opening = asyncio.ensure_future(
            asyncio.to_thread(self._open_object, path, key, "iter_chunks")
        )
        try:
            f, footer = await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(_close_opened)
            raise
        try:
            remaining = footer.size
            while remaining > 0:
                try:
                    chunk = await asyncio.to_thread(f.read, min(chunk_size, remaining))
                except OSError as exc:
                    raise StorageError(
                        str(exc), operation="iter_chunks", key=key, public=_os_reason(exc)
                    ) from exc
                if not chunk:
                    raise _corrupt(key, "file shorter than its footer says")
                remaining -= len(chunk)
                yield chunk
        finally:
            # Closed here, not in a thread: a cancelled task's queued thread call may never
            # run, and closing a file opened for reading does not wait on the disk.
            f.close()

    async def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        return await asyncio.to_thread(self._head, path, key)

    async def list(self, prefix: str = "") -> AsyncGenerator[ObjectInfo, None]:
        validate_prefix(prefix)
        keys = await asyncio.to_thread(self._walk_keys, prefix)
        for i in range(0, len(keys), _LIST_BATCH):
            batch = keys[i : i + _LIST_BATCH]
            infos = await asyncio.to_thread(self._list_infos, batch)
            for info in infos:
                yield info

    # --- writes -----------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: bytes,
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        path = self._path(key)
        meta = validate_metadata(metadata, key)
        return await asyncio.to_thread(
            self._put_bytes, path, key, bytes(data), meta, content_type or DEFAULT_CONTENT_TYPE
        )

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        metadata: Mapping[str, str] | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        path = self._path(key)
        meta = validate_metadata(metadata, key)
        # As in `iter_chunks`: a create outliving a cancelled caller is undone, not leaked.
        creating = asyncio.ensure_future(asyncio.to_thread(self._create_temp, path, key))
        try:
            f, tmp = await asyncio.shield(creating)
        except asyncio.CancelledError:
            creating.add_done_callback(_discard_created)
            raise
        digest = hashlib.md5(usedforsecurity=False)
        size = 0

        async def write(data: bytes) -> None:
            # Only our own file errors become StorageError; the source's errors pass as is.
            try:
                await asyncio.to_thread(_write_hashed, f, digest, data)
            except OSError as exc:
                raise StorageError(
                    str(exc), operation="put_stream", key=key, public=_os_reason(exc)
                ) from exc

        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= _WRITE_BUFFER:
                    size += len(buffer)
                    await write(bytes(buffer))
                    buffer.clear()
            size += len(buffer)
            await write(bytes(buffer))
            footer = _Footer(size, digest.hexdigest(), content_type or DEFAULT_CONTENT_TYPE, meta)
            return await asyncio.to_thread(self._publish, f, tmp, path, key, footer)
        except BaseException:
            await _discard(f, tmp)
            raise

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(self._delete_paths, [(key, path)])

    async def delete_many(self, keys: Iterable[str]) -> None:
        pairs = [(key, self._path(key)) for key in keys]
        if pairs:
            await asyncio.to_thread(self._delete_paths, pairs)

    async def remove_stale_temp_files(self, max_age_s: float) -> int:
        """Delete temp files older than `max_age_s` (left by a crash); returns how many.

        Young temp files may belong to a write in progress in another process
        sharing the directory, so they are left alone.
        """
        return await asyncio.to_thread(self._remove_stale_temp_files, max_age_s)

    # --- key -> path ------------------------------------------------------------

    def _path(self, key: str) -> Path:
        """The file of `key`, proven to lie under the root."""
        validate_key(key)
        path = self.root.joinpath(*key.split("/"))
        # validate_key already excludes '..'; this guards against a future change there.
        if os.path.commonpath([self.root, path]) != str(self.root):
            raise InvalidKey(key, "resolves outside the store root")
        return path

    # --- blocking helpers (run in worker threads) -------------------------------

    def _read_all(self, path: Path, key: str) -> bytes:
        try:
            with open(path, "rb") as f:
                raw = f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        except OSError as exc:
            raise StorageError(str(exc), operation="get", key=key, public=_os_reason(exc)) from exc
        footer = _parse_footer(raw[-_TRAILER.size :], len(raw), lambda n: raw[-n:], key)
        return raw[: footer.size]

    def _read_range(self, path: Path, key: str, start: int, end: int) -> bytes:
        f, footer = self._open_object(path, key, "get_range")
        with f:
            stop = min(end, footer.size)
            if start >= stop:
                return b""
            return os.pread(f.fileno(), stop - start, start)

    def _open_object(self, path: Path, key: str, operation: str) -> tuple[IO[bytes], _Footer]:
        """The open file positioned at the data start, and its parsed footer."""
        try:
            f = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectNotFound(key, operation=operation) from None
        except OSError as exc:
            raise StorageError(
                str(exc), operation=operation, key=key, public=_os_reason(exc)
            ) from exc
        try:
            return f, _read_footer(f, key)
        except BaseException:
            f.close()
            raise

    def _head(self, path: Path, key: str) -> ObjectInfo | None:
        try:
            f, footer = self._open_object(path, key, "head")
        except ObjectNotFound:
            return None
        with f:
            mtime = os.fstat(f.fileno()).st_mtime
        return _info(key, footer, mtime, full=True)

    def _walk_keys(self, prefix: str) -> builtins.list[str]:
        """Every object key under the root starting with `prefix`, sorted."""
        base_dir = prefix.rpartition("/")[0]
        start = self.root.joinpath(*base_dir.split("/")) if base_dir else self.root
        keys: builtins.list[str] = []
        stack = [(start, base_dir)]
        while stack:
            directory, rel = stack.pop()
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as exc:
                raise StorageError(
                    str(exc), operation="list", key=prefix, public=_os_reason(exc)
                ) from exc
            for entry in entries:
                if entry.name.startswith("."):
                    continue  # temp files; no valid key has a segment starting with '.'
                key = f"{rel}/{entry.name}" if rel else entry.name
                if entry.is_dir(follow_symlinks=False):
                    if key.startswith(prefix) or prefix.startswith(key + "/"):
                        stack.append((Path(entry.path), key))
                elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                    keys.append(key)
        # Python orders str by code point, which is UTF-8 byte order, as S3 lists.
        keys.sort()
        return keys

    def _list_infos(self, keys: builtins.list[str]) -> builtins.list[ObjectInfo]:
        infos: builtins.list[ObjectInfo] = []
        for key in keys:
            try:
                f, footer = self._open_object(self._path(key), key, "list")
            except ObjectNotFound:
                continue  # deleted since the walk
            except CorruptObject as exc:
                # Listed all the same (as S3 would), so sweepers can still delete it.
                logger.warning("listing a damaged object %s: %s", key, exc)
                infos.append(self._damaged_info(key))
                continue
            with f:
                mtime = os.fstat(f.fileno()).st_mtime
            infos.append(_info(key, footer, mtime, full=False))
        return infos

    def _damaged_info(self, key: str) -> ObjectInfo:
        st = self._path(key).stat()
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=f"damaged-{st.st_mtime_ns}",
            last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _create_temp(self, path: Path, key: str) -> tuple[IO[bytes], Path]:
        """A new hidden temp file beside `path`, opened for writing."""
        for _ in range(_CREATE_ATTEMPTS):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.parent / f".{os.urandom(8).hex()}{_TEMP_SUFFIX}"
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileNotFoundError:
                continue  # a concurrent delete pruned the empty directory: make it again
            except (FileExistsError, NotADirectoryError) as exc:
                raise StorageError(
                    "a parent of this key is an object, not a directory",
                    operation="put",
                    key=key,
                    public="a parent of the key is an object",
                ) from exc
            except OSError as exc:
                raise StorageError(
                    str(exc), operation="put", key=key, public=_os_reason(exc)
                ) from exc
            return os.fdopen(fd, "wb"), tmp
        raise StorageError(
            "directory keeps disappearing",
            operation="put",
            key=key,
            public="the directory keeps disappearing",
        )

    def _put_bytes(
        self, path: Path, key: str, data: bytes, meta: dict[str, str], content_type: str
    ) -> ObjectInfo:
        f, tmp = self._create_temp(path, key)
        try:
            digest = hashlib.md5(usedforsecurity=False)
            _write_hashed(f, digest, data)
            footer = _Footer(len(data), digest.hexdigest(), content_type, meta)
            return self._publish(f, tmp, path, key, footer)
        except OSError as exc:
            _discard_sync(f, tmp)
            raise StorageError(str(exc), operation="put", key=key, public=_os_reason(exc)) from exc
        except BaseException:
            _discard_sync(f, tmp)
            raise

    def _publish(
        self, f: IO[bytes], tmp: Path, path: Path, key: str, footer: _Footer
    ) -> ObjectInfo:
        """Append the footer, fsync, rename over `path`, fsync the directory."""
        body = json.dumps(
            {
                "size": footer.size,
                "etag": footer.etag,
                "content_type": footer.content_type,
                "metadata": footer.metadata,
            },
            separators=(",", ":"),
        ).encode()
        try:
            f.write(body)
            f.write(_TRAILER.pack(len(body), _MAGIC))
            f.flush()
            os.fsync(f.fileno())
            mtime = os.fstat(f.fileno()).st_mtime
            f.close()
            os.replace(tmp, path)
        except IsADirectoryError as exc:
            raise StorageError(
                "the key is a directory of other objects", operation="put", key=key
            ) from exc
        except OSError as exc:
            raise StorageError(str(exc), operation="put", key=key, public=_os_reason(exc)) from exc
        _fsync_dir(path.parent)
        return _info(key, footer, mtime, full=True)

    def _delete_paths(self, pairs: builtins.list[tuple[str, Path]]) -> None:
        parents: set[Path] = set()
        for key, path in pairs:
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                continue
            except OSError as exc:
                raise StorageError(
                    str(exc), operation="delete", key=key, public=_os_reason(exc)
                ) from exc
            parents.add(path.parent)
        # Deepest first, so a directory emptied by pruning its child goes too.
        for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            self._prune_empty_dirs(parent)

    def _prune_empty_dirs(self, directory: Path) -> None:
        """Remove empty directories from `directory` up to (not including) the root."""
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    logger.debug("could not prune %s: %s", directory, exc)
                return
            directory = directory.parent

    def _remove_stale_temp_files(self, max_age_s: float) -> int:
        cutoff = time.time() - max_age_s
        removed = 0
        for dirpath, _dirnames, filenames in os.walk(self.root):
            for name in filenames:
                if not (name.startswith(".") and name.endswith(_TEMP_SUFFIX)):
                    continue
                path = os.path.join(dirpath, name)
                with contextlib.suppress(FileNotFoundError):
                    st = os.lstat(path)
                    if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                        os.unlink(path)
                        removed += 1
        return removed


def _write_hashed(f: IO[bytes], digest: hashlib._Hash, data: bytes) -> None:
    digest.update(data)
    f.write(data)


def _close_opened(opening: asyncio.Future[tuple[IO[bytes], _Footer]]) -> None:
    """Close the file of an open whose caller was cancelled before it could use it."""
    if not opening.cancelled() and opening.exception() is None:
        opening.result()[0].close()


def _discard_created(creating: asyncio.Future[tuple[IO[bytes], Path]]) -> None:
    """Close and remove the temp file of a create whose caller was cancelled meanwhile."""
    if not creating.cancelled() and creating.exception() is None:
        _discard_sync(*creating.result())


async def _discard(f: IO[bytes], tmp: Path) -> None:
    """Close and remove an unpublished temp file, even while being cancelled."""
    await asyncio.shield(asyncio.to_thread(_discard_sync, f, tmp))


def _discard_sync(f: IO[bytes], tmp: Path) -> None:
    with contextlib.suppress(OSError):
        f.close()
    with contextlib.suppress(OSError):
        tmp.unlink()


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (POSIX needs the directory fsync'd)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        logger.debug("fsync of %s failed: %s", directory, exc)
    finally:
        os.close(fd)


def _read_footer(f: IO[bytes], key: str) -> _Footer:
    """Parse the footer of an open object file and seek back to the data start."""
    total = os.fstat(f.fileno()).st_size

    def tail(n: int) -> bytes:
        return os.pread(f.fileno(), n, total - n)

    footer = _parse_footer(tail(min(total, _TRAILER.size)), total, tail, key)
    f.seek(0)
    return footer


def _parse_footer(trailer: bytes, total: int, tail: Callable[[int], bytes], key: str) -> _Footer:
    """Decode `<json><u32 len><magic>` at the end of a `total`-byte file; `tail(n)` reads it."""
    if len(trailer) < _TRAILER.size:
        raise _corrupt(key, "too short for a footer")
    length, magic = _TRAILER.unpack(trailer)
    if magic != _MAGIC or length + _TRAILER.size > total:
        raise _corrupt(key, "bad footer")
    raw = tail(length + _TRAILER.size)[:length]
    try:
        doc = json.loads(raw)
        footer = _Footer(
            size=int(doc["size"]),
            etag=str(doc["etag"]),
            content_type=str(doc["content_type"]),
            metadata={str(k): str(v) for k, v in doc["metadata"].items()},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _corrupt(key, f"unreadable footer ({exc})") from exc
    if footer.size != total - length - _TRAILER.size:
        raise _corrupt(key, "size in footer does not match the file")
    return footer


def _os_reason(exc: OSError) -> str:
    """What went wrong, without the file name `str(exc)` carries (a path is internal)."""
    return exc.strerror or type(exc).__name__


def _corrupt(key: str, why: str) -> CorruptObject:
    return CorruptObject(key, why)


def _info(key: str, footer: _Footer, mtime: float, *, full: bool) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=footer.size,
        etag=footer.etag,
        last_modified=datetime.fromtimestamp(mtime, UTC),
        metadata=dict(footer.metadata) if full else None,
        content_type=footer.content_type if full else None,
    )
