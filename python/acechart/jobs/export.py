"""A job's result: written series by series, stored with an index, converted series by series.

A year of 50 one-minute points is 26 M samples: about 650 MB of JSON. The job
never holds that document (or its samples) whole. The Rust core writes a
document in pieces, array to bytes: `encode_head`, one `encode_part` per series
(with whatever separator goes before it) and `encode_tail`, and head + parts +
tail are exactly the bytes the whole-document encoders produce (the tests
check that against `encode_json` / `encode_msgpack` / `encode_csv`). Parts go
to an anonymous spool file as each group of points arrives, because the head
carries `totalSamples`, known only at the end; then head + spool + tail stream
into the object store with `put_stream`.

Beside the document, each series' arrays are stored once more as a cache
block (`encode_block`: zstd, checksummed), all of them concatenated into
`series.blocks`. `metadata.json` (the seed's fields, section 2.1) indexes both:
where each series' part lies in the document (a Range request needs no
parsing) and where its block lies in `series.blocks`. Converting a result to
another representation reads one block at a time with a ranged get, decodes it
to arrays and encodes it as a part of the wanted document: nothing is parsed
back out of JSON, MessagePack or CSV, and memory holds one series. A block that
does not decode is reported as a `CorruptObject`, never passed on.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from acechart._core import (
    BlockDecodeError,
    decode_block,
    encode_block,
    encode_head,
    encode_part,
    encode_tail,
)
from acechart.query import Query
from acechart.result import Series
from acechart.storage.keys import export_key, export_prefix
from acechart.storage.objects import CorruptObject, ObjectInfo, ObjectStore
from acechart.times import format_time
from acechart.wire import (
    CONTENT_TYPES,
    SEED_FORMAT_NAMES,
    RawItem,
    Representation,
    series_item,
    timeseries_metadata,
)

__all__ = [
    "BLOCKS_FILE",
    "METADATA_FILE",
    "ResultWriter",
    "SeriesEntry",
    "blocks_key",
    "convert",
    "data_key",
    "drop_outputs",
    "metadata_key",
]

METADATA_FILE = "metadata.json"
BLOCKS_FILE = "series.blocks"
#: What `blocks.codec` in metadata.json names: `_core.encode_block`'s format.
BLOCK_CODEC = "acechart-block"
_SPOOL_READ = 1 << 20


def data_key(job_id: str, fmt: str) -> str:
    """`exports/{jobId}/data.{json|msgpack|csv}`."""
    return export_key(job_id, f"data.{fmt}")


def metadata_key(job_id: str) -> str:
    """`exports/{jobId}/metadata.json`."""
    return export_key(job_id, METADATA_FILE)


def blocks_key(job_id: str) -> str:
    """`exports/{jobId}/series.blocks`: every series' arrays, one block after another."""
    return export_key(job_id, BLOCKS_FILE)


async def drop_outputs(store: ObjectStore, job_id: str) -> None:
    """Delete whatever a job stored (a finished result, or a failed run's remains)."""
    keys = [info.key async for info in store.list(export_prefix(job_id))]
    if keys:
        await store.delete_many(keys)


@dataclass(frozen=True)
class SeriesEntry:
    """Where one series lies: its part of the document, and its block in `series.blocks`.

    `offset`/`length` cover the part exactly as `encode_part` wrote it, so they
    include the separator before every series but the first (JSON's comma).
    """

    name: str
    samples: int
    offset: int
    length: int
    block_offset: int
    block_length: int

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "samples": self.samples,
            "offset": self.offset,
            "length": self.length,
            "blockOffset": self.block_offset,
            "blockLength": self.block_length,
        }


class _Spool:
    """An anonymous temporary file filled piece by piece, then read back in chunks."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.size = 0
        self._file: IO[bytes] | None = None

    def write(self, data: bytes) -> int:
        """Append `data`; returns the offset it was written at."""
        if self._file is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            # Open across many calls and closed by `close`: no `with` can span that.
            self._file = tempfile.TemporaryFile(dir=self.directory, prefix="job-")  # noqa: SIM115
        offset = self.size
        self._file.write(data)
        self.size += len(data)
        return offset

    async def chunks(self, sent: Callable[[int], None]) -> AsyncIterator[bytes]:
        """The spooled bytes from the start; `sent(n)` after each chunk of `n` bytes."""
        spool = self._file
        if spool is None:
            return
        await asyncio.to_thread(spool.seek, 0)
        while chunk := await asyncio.to_thread(spool.read, _SPOOL_READ):
            sent(len(chunk))
            yield chunk

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class ResultWriter:
    """Spools a job's series as document parts and blocks, then stores the export.

    `add` the series in order, `finish` once, `close` always (it deletes the
    spool files).
    """

    job_id: str
    query: Query
    representation: Representation
    spool_dir: Path
    entries: list[SeriesEntry] = field(default_factory=list)
    _parts: _Spool = field(init=False)
    _blocks: _Spool = field(init=False)
    _covered: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self._parts = _Spool(self.spool_dir)
        self._blocks = _Spool(self.spool_dir)
        self._covered = np.array([[self.query.start_ms, self.query.end_ms]], dtype=np.int64)

    @property
    def total_samples(self) -> int:
        return sum(e.samples for e in self.entries)

    async def add(self, series: Sequence[Series]) -> None:
        """Encode and spool series in order (in a thread: the encoders release the GIL)."""
        for s in series:
            await asyncio.to_thread(self._add_one, series_item(s))

    def _add_one(self, item: RawItem) -> None:
        rep = self.representation
        name, ts, values = item
        part = encode_part(rep.format, item, len(self.entries), rep.layout)
        block = encode_block(name, ts, values, self._covered)
        self.entries.append(
            SeriesEntry(
                name,
                len(ts),
                self._parts.write(part),
                len(part),
                self._blocks.write(block),
                len(block),
            )
        )

    async def finish(
        self,
        store: ObjectStore,
        *,
        created_at: int,
        expires_at: int,
        progress: Callable[[float], None] | None = None,
    ) -> ObjectInfo:
        """Store the document, the blocks and metadata.json; returns the document's object.

        `progress` gets the share of bytes sent so far (document and blocks together).
        """
        rep = self.representation
        total_samples = self.total_samples
        head = encode_head(
            rep.format,
            timeseries_metadata(self.query, total_samples),
            len(self.entries),
            rep.layout,
        )
        tail = encode_tail(rep.format)
        total = len(head) + self._parts.size + len(tail) + self._blocks.size
        done = 0

        def sent(n: int) -> None:
            nonlocal done
            done += n
            if progress is not None:
                progress(done / total)

        async def document() -> AsyncIterator[bytes]:
            yield head
            sent(len(head))
            async for chunk in self._parts.chunks(sent):
                yield chunk
            yield tail
            sent(len(tail))

        key = data_key(self.job_id, rep.format)
        info = await store.put_stream(key, document(), {"format": rep.format}, rep.content_type)
        blocks = await store.put_stream(
            blocks_key(self.job_id),
            self._blocks.chunks(sent),
            {"codec": BLOCK_CODEC},
            "application/octet-stream",
        )
        entries = [
            SeriesEntry(
                e.name, e.samples, e.offset + len(head), e.length, e.block_offset, e.block_length
            )
            for e in self.entries
        ]
        meta = export_metadata(
            job_id=self.job_id,
            key=key,
            query=self.query,
            representation=rep,
            entries=entries,
            size=info.size,
            blocks=blocks,
            created_at=created_at,
            expires_at=expires_at,
        )
        await store.put(
            metadata_key(self.job_id), json.dumps(meta).encode(), None, "application/json"
        )
        return info

    def close(self) -> None:
        self._parts.close()
        self._blocks.close()


def export_metadata(
    *,
    job_id: str,
    key: str,
    query: Query,
    representation: Representation,
    entries: Sequence[SeriesEntry],
    size: int,
    blocks: ObjectInfo,
    created_at: int,
    expires_at: int,
) -> dict[str, Any]:
    """The seed's metadata.json (section 2.1) for one export, plus the series index."""
    fmt = representation.format
    meta: dict[str, Any] = {
        "key": key,
        "pointNames": list(query.points),
        "siteId": query.site,
        "startTime": format_time(query.start_ms),
        "endTime": format_time(query.end_ms),
        "totalPoints": len(query.points),
        "totalSamples": sum(e.samples for e in entries),
        "aggregation": query.interval,
        "format": SEED_FORMAT_NAMES[fmt],
        "compression": "none",
        "createdAt": format_time(created_at * 1000),
        "expiresAt": format_time(expires_at * 1000),
        "sizeBytes": size,
        "jobId": job_id,
        "layout": representation.layout,
        "contentType": CONTENT_TYPES[fmt],
        "blocks": {"key": blocks.key, "sizeBytes": blocks.size, "codec": BLOCK_CODEC},
        "series": [e.to_json() for e in entries],
    }
    if query.max_points is not None:
        meta["downsample"] = query.downsample or "minmaxlttb"
        meta["maxPoints"] = query.max_points
    return meta


@dataclass(frozen=True)
class _Indexed:
    """One series as metadata.json indexes it in `series.blocks`."""

    name: str
    samples: int
    offset: int
    length: int


async def convert(
    store: ObjectStore, job_id: str, query: Query, wanted: Representation
) -> AsyncGenerator[bytes, None]:
    """A stored result as a document in `wanted`, one series at a time.

    Each series is one ranged get of its block, decoded to arrays and encoded
    as a part of the wanted document. The first series is read before the head
    is yielded, so a missing or damaged export fails before any byte is sent.
    `ObjectNotFound` when the export is gone; `CorruptObject` when its
    metadata.json or a block does not read back.
    """
    index_key = metadata_key(job_id)
    index = _read_index(await store.get(index_key), index_key)
    key = blocks_key(job_id)
    total = sum(e.samples for e in index)
    head = encode_head(wanted.format, timeseries_metadata(query, total), len(index), wanted.layout)
    first = await _reencoded(store, key, 0, index[0], wanted) if index else None
    yield head
    if first is not None:
        yield first
    for i in range(1, len(index)):
        yield await _reencoded(store, key, i, index[i], wanted)
    yield encode_tail(wanted.format)


async def _reencoded(
    store: ObjectStore, key: str, index: int, entry: _Indexed, wanted: Representation
) -> bytes:
    block = await store.get_range(key, entry.offset, entry.offset + entry.length)
    return await asyncio.to_thread(_block_to_part, block, key, index, entry, wanted)


def _block_to_part(
    block: bytes, key: str, index: int, entry: _Indexed, wanted: Representation
) -> bytes:
    where = f"series {index} ({entry.name!r})"
    try:
        name, ts, values, _ = decode_block(block)
    except BlockDecodeError as exc:
        raise CorruptObject(key, f"{where}: {exc}") from exc
    if name != entry.name or len(ts) != entry.samples:
        raise CorruptObject(
            key, f"{where}: the block holds {name!r} with {len(ts)} samples, not the indexed one"
        )
    return encode_part(wanted.format, (name, ts, values), index, wanted.layout)


def _read_index(raw: bytes, key: str) -> list[_Indexed]:
    """Each series' block, from metadata.json; `CorruptObject` if it does not read."""
    try:
        return [
            _Indexed(
                str(e["name"]), int(e["samples"]), int(e["blockOffset"]), int(e["blockLength"])
            )
            for e in json.loads(raw)["series"]
        ]
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptObject(key, f"not an export index ({type(exc).__name__}: {exc})") from exc
