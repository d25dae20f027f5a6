"""A job's result: written series by series, stored with an index, converted series by series.

A year of 50 one-minute points is 26 M samples: about 650 MB of JSON. The job
never holds that document (or its samples) whole. Every format is written in
pieces, array to bytes: a head, one part per series and a tail.

- JSON, MessagePack, CSV: the Rust core's `encode_head`, one `encode_part` per
  series (with whatever separator goes before it) and `encode_tail`; head +
  parts + tail are exactly the bytes the whole-document encoders produce (the
  tests check that against `encode_json` / `encode_msgpack` / `encode_csv`).
- Arrow: the schema message (`wire.arrow_head`: the schema metadata names every
  series and its rows), per series a dictionary batch of its point's name and
  its record batch (`wire.arrow_part`, from `encode_arrow`), and the
  end-of-stream marker: one valid IPC stream, read as `encode_arrow`'s
  `series` layout reads (each part replaces the dictionary).
- Parquet: pyarrow's `ParquetWriter` (the `acechart[arrow]` extra) fed one
  series at a time from its arrays, one row group per series (a longer one per
  `PARQUET_ROW_GROUP_ROWS`); a part is the bytes the writer put out for it (the
  first with the file's magic), the tail the footer. The schema metadata
  (`acechart:metadata`, `acechart:series`) is the Arrow document's.

Parts go to an anonymous spool file as each group of points arrives, because
the head carries `totalSamples`, known only at the end; then head + spool +
tail stream into the object store with `put_stream`.

Beside the document, each series' arrays are stored once more as a cache
block (`encode_block`: zstd, checksummed), all of them concatenated into
`series.blocks`. `metadata.json` (the seed's fields, section 2.1) indexes both:
where each series' part lies in the document (a Range request needs no
parsing; for Parquet, its row groups) and where its block lies in
`series.blocks`. Converting a result to another representation reads one block
at a time with a ranged get, decodes it to arrays and encodes it as a part of
the wanted document: nothing is parsed back out of the stored document, and
memory holds one series. A block that does not decode is reported as a
`CorruptObject`, never passed on.

A converted document can be resumed: its first whole encoding records its
byte layout (head, tail, each part's length and checksum) in a conversion
index beside the result, so later requests know its length and a byte range
re-encodes only the series it overlaps (`Conversion`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import hashlib
import json
import logging
import tempfile
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from acechart._core import (
    BlockDecodeError,
    __version__,
    decode_block,
    encode_block,
    encode_head,
    encode_part,
    encode_tail,
)
from acechart.query import Query
from acechart.result import Series
from acechart.storage.keys import export_key, export_prefix
from acechart.storage.objects import CorruptObject, ObjectInfo, ObjectNotFound, ObjectStore
from acechart.times import format_time
from acechart.wire import (
    ARROW_EOS,
    CONTENT_TYPES,
    SEED_FORMAT_NAMES,
    RawItem,
    Representation,
    arrow_head,
    arrow_part,
    series_item,
    timeseries_metadata,
)

__all__ = [
    "BLOCKS_FILE",
    "METADATA_FILE",
    "PARQUET_ROW_GROUP_ROWS",
    "Conversion",
    "Layout",
    "ResultWriter",
    "SeriesEntry",
    "blocks_key",
    "conversion_etag",
    "conversion_key",
    "data_key",
    "drop_outputs",
    "metadata_key",
]

logger = logging.getLogger(__name__)

METADATA_FILE = "metadata.json"
BLOCKS_FILE = "series.blocks"
#: What `blocks.codec` in metadata.json names: `_core.encode_block`'s format.
BLOCK_CODEC = "acechart-block"
_SPOOL_READ = 1 << 20
#: Rows of one Parquet row group at most: a longer series is split (a row group is
#: buffered whole by the writer, so this bounds its memory too).
PARQUET_ROW_GROUP_ROWS = 1 << 20
#: What every Parquet file starts (and ends) with.
PARQUET_MAGIC = b"PAR1"


def data_key(job_id: str, fmt: str) -> str:
    """`exports/{jobId}/data.{json|msgpack|csv|arrow|parquet}`."""
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


_T = TypeVar("_T")


async def _to_thread_to_the_end(fn: Callable[..., _T], *args: Any) -> _T:
    """`asyncio.to_thread`, but a cancelled caller still waits for the thread to finish.

    A thread cannot be stopped: without the wait, the caller's `finally` (closing
    the spools, or a Parquet writer) would race a thread still writing into them.
    """
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        raise


class _Spool:
    """An anonymous temporary file filled piece by piece, then read back in chunks."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.size = 0
        self._file: IO[bytes] | None = None
        self._closed = False

    def write(self, data: bytes) -> int:
        """Append `data`; returns the offset it was written at."""
        if self._closed:
            # Never reopen: a file opened after `close` would be nobody's to close.
            raise RuntimeError("the spool is closed")
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
        self._closed = True
        if self._file is not None:
            self._file.close()
            self._file = None


Listing = Sequence[tuple[str, int]]
"""Each series of a document by name and number of samples, in order."""


class _Pieces(Protocol):
    """One document being written: the head, the parts (in order), the tail.

    `head` and `tail` are asked for once every part is written (a writer knows
    `totalSamples` only then) and `head` goes before the parts in the document.
    """

    def part(self, item: RawItem, index: int) -> bytes: ...

    def head(self, metadata: dict[str, Any], listing: Listing) -> bytes: ...

    def tail(self, metadata: dict[str, Any], listing: Listing) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class _CorePieces:
    """JSON, MessagePack and CSV, from the Rust core's `encode_head/part/tail`."""

    format: Literal["json", "msgpack", "csv"]
    layout: Literal["rows", "columns"]

    def part(self, item: RawItem, index: int) -> bytes:
        return encode_part(self.format, item, index, self.layout)

    def head(self, metadata: dict[str, Any], listing: Listing) -> bytes:
        return encode_head(self.format, metadata, len(listing), self.layout)

    def tail(self, metadata: dict[str, Any], listing: Listing) -> bytes:
        return encode_tail(self.format)

    def close(self) -> None:
        pass


class _ArrowPieces:
    """An Arrow IPC stream: the schema message, per series a dictionary and a record
    batch, the end-of-stream marker (see `wire.arrow_head`)."""

    def part(self, item: RawItem, index: int) -> bytes:
        return arrow_part(item)

    def head(self, metadata: dict[str, Any], listing: Listing) -> bytes:
        return arrow_head(metadata, listing)

    def tail(self, metadata: dict[str, Any], listing: Listing) -> bytes:
        return ARROW_EOS

    def close(self) -> None:
        pass


class _Drain:
    """The file pyarrow's Parquet writer writes to: what it wrote since the last `take`."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._position = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._chunks.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        out = b"".join(self._chunks)
        self._chunks.clear()
        return out


class _ParquetPieces:
    """A Parquet file from pyarrow's writer, fed series by series from the arrays.

    `point` is written dictionary-encoded (one value per row group), `time` as
    `timestamp[ms, UTC]`, `value` float64, zstd-compressed. The Arrow schema is not
    stored in the file, so readers take the schema metadata from the footer's
    key-value metadata, which only `tail` knows (`totalSamples`).
    """

    def __init__(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pa = pa
        self._rows = PARQUET_ROW_GROUP_ROWS
        self._time = pa.timestamp("ms", tz="UTC")
        self._schema = pa.schema(
            [
                pa.field("point", pa.dictionary(pa.int32(), pa.utf8()), nullable=False),
                pa.field("time", self._time, nullable=False),
                pa.field("value", pa.float64(), nullable=False),
            ]
        )
        self._sink = _Drain()
        self._writer = pq.ParquetWriter(
            self._sink, self._schema, compression="zstd", store_schema=False
        )

    def part(self, item: RawItem, index: int) -> bytes:
        pa = self._pa
        name, ts, values = item
        n = len(ts)
        columns = [
            pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([name])),
            pa.Array.from_buffers(self._time, n, [None, pa.py_buffer(ts)]),
            pa.array(values),
        ]
        table = pa.Table.from_arrays(columns, schema=self._schema)
        self._writer.write_table(table, row_group_size=self._rows)
        return self._sink.take()

    def head(self, metadata: dict[str, Any], listing: Listing) -> bytes:
        return b""  # the magic goes out with the first part (or the tail)

    def tail(self, metadata: dict[str, Any], listing: Listing) -> bytes:
        self._writer.add_key_value_metadata(
            {
                "acechart:metadata": _compact(metadata),
                "acechart:series": _compact([{"name": n, "rows": r} for n, r in listing]),
            }
        )
        self._writer.close()
        return self._sink.take()

    def close(self) -> None:
        if self._writer.is_open:
            self._writer.close()


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _pieces(rep: Representation) -> _Pieces:
    """The writer of one document in `rep` (checked by `wire.representation` or
    `negotiate`: jobs have no `wide` layout)."""
    if rep.format == "arrow":
        return _ArrowPieces()
    if rep.format == "parquet":
        return _ParquetPieces()
    return _CorePieces(rep.format, "columns" if rep.layout == "columns" else "rows")


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
    _pieces: _Pieces = field(init=False)
    _parts: _Spool = field(init=False)
    _blocks: _Spool = field(init=False)
    _covered: NDArray[np.int64] = field(init=False)

    def __post_init__(self) -> None:
        self._pieces = _pieces(self.representation)
        self._parts = _Spool(self.spool_dir)
        self._blocks = _Spool(self.spool_dir)
        self._covered = np.array([[self.query.start_ms, self.query.end_ms]], dtype=np.int64)

    @property
    def total_samples(self) -> int:
        return sum(e.samples for e in self.entries)

    async def add(self, series: Sequence[Series]) -> None:
        """Encode and spool series in order (in a thread: the encoders release the GIL)."""
        for s in series:
            await _to_thread_to_the_end(self._add_one, series_item(s))

    def _add_one(self, item: RawItem) -> None:
        name, ts, values = item
        part = self._pieces.part(item, len(self.entries))
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
        metadata = timeseries_metadata(self.query, self.total_samples)
        listing = [(e.name, e.samples) for e in self.entries]
        head = await _to_thread_to_the_end(self._pieces.head, metadata, listing)
        tail = await _to_thread_to_the_end(self._pieces.tail, metadata, listing)
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
        self._pieces.close()
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


def conversion_key(job_id: str, rep: Representation) -> str:
    """`exports/{jobId}/converted.{format}.{layout}.json`: the byte layout of one conversion."""
    return export_key(job_id, f"converted.{rep.format}.{rep.layout}.json")


def _encoder_version(rep: Representation) -> str:
    """What the converted bytes depend on besides the stored arrays: our encoders, and for
    Parquet pyarrow's writer (its footer names it)."""
    if rep.format == "parquet":
        import pyarrow

        return f"acechart {__version__}; pyarrow {pyarrow.__version__}"
    return f"acechart {__version__}"


def conversion_etag(stored_etag: str, rep: Representation) -> str:
    """The strong ETag of a result converted to `rep`.

    The conversion is a pure function of the stored blocks (one stored ETag), the
    representation and the encoders' version, so the same tag always means the
    same bytes; the part checksums in the conversion index hold every re-encoding
    to that.
    """
    seed = "\n".join([stored_etag, rep.format, rep.layout, _encoder_version(rep)])
    return '"c-' + hashlib.sha256(seed.encode()).hexdigest()[:32] + '"'


@dataclass(frozen=True)
class Layout:
    """Where the pieces of one converted document lie: the head and tail as bytes, each
    part by length and CRC-32 (what a re-encoding must reproduce)."""

    head: bytes
    tail: bytes
    lengths: tuple[int, ...]
    crcs: tuple[int, ...]

    @property
    def size(self) -> int:
        return len(self.head) + sum(self.lengths) + len(self.tail)

    def to_json(self, etag: str, rep: Representation) -> bytes:
        return json.dumps(
            {
                "etag": etag,
                "format": rep.format,
                "layout": rep.layout,
                "head": base64.b64encode(self.head).decode(),
                "tail": base64.b64encode(self.tail).decode(),
                "lengths": self.lengths,
                "crc32": self.crcs,
            }
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes, etag: str, parts: int) -> Layout | None:
        """The layout, or None when it is not this conversion's (another ETag: an older
        encoder) or does not read (it is then rebuilt, never trusted)."""
        try:
            doc = json.loads(raw)
            if doc["etag"] != etag:
                return None
            layout = cls(
                base64.b64decode(doc["head"], validate=True),
                base64.b64decode(doc["tail"], validate=True),
                tuple(int(n) for n in doc["lengths"]),
                tuple(int(n) for n in doc["crc32"]),
            )
        except (ValueError, TypeError, KeyError, binascii.Error):
            return None
        if len(layout.lengths) != parts or len(layout.crcs) != parts:
            return None
        return layout


@dataclass
class Conversion:
    """A stored result as a document in another representation, whole or by byte range.

    The whole document is encoded series by series (as `ResultWriter` wrote the
    stored one: one block read, decoded and encoded at a time). Its byte layout
    (head and tail bytes, each part's length and CRC-32) is kept in a small
    conversion index beside the result (`conversion_key`), written after the
    first whole encoding, by a full download or by `measured`. With it, the
    size is known up front and a byte range encodes only the series it
    overlaps: each part is independent of the others (the Rust core's parts
    take their index, an Arrow part carries its own dictionary, a Parquet row
    group comes out of a fresh writer byte for byte as out of a shared one, its
    file magic aside), and every re-encoded part is checked against the index's
    length and checksum, so a range is never spliced from different bytes.

    `encoded` counts the series encoded, for the metrics.
    """

    store: ObjectStore
    job_id: str
    query: Query
    wanted: Representation
    etag: str
    series: list[_Indexed]
    layout: Layout | None
    encoded: int = 0

    @classmethod
    async def open(
        cls,
        store: ObjectStore,
        job_id: str,
        query: Query,
        wanted: Representation,
        stored_etag: str,
    ) -> Conversion:
        """`ObjectNotFound` when the export is gone; `CorruptObject` when its
        metadata.json does not read."""
        index_key = metadata_key(job_id)
        series = _read_index(await store.get(index_key), index_key)
        etag = conversion_etag(stored_etag, wanted)
        try:
            raw = await store.get(conversion_key(job_id, wanted))
        except ObjectNotFound:
            layout = None
        else:
            layout = Layout.from_json(raw, etag, len(series))
            if layout is None:
                logger.warning(
                    "job %s: the %s index is stale or damaged; rebuilt on demand",
                    job_id,
                    conversion_key(job_id, wanted),
                )
        return cls(store, job_id, query, wanted, etag, series, layout)

    @property
    def size(self) -> int | None:
        """The document's length in bytes, when its layout is known."""
        return None if self.layout is None else self.layout.size

    async def measured(self) -> Layout:
        """The document's layout, encoding it once (and storing it) if need be."""
        if self.layout is None:
            async with contextlib.aclosing(self.whole()) as chunks:
                async for _ in chunks:
                    pass
        assert self.layout is not None  # whole() sets it once it has run to the end
        return self.layout

    async def whole(self) -> AsyncGenerator[bytes, None]:
        """The whole document, one series at a time; its layout is stored at the end.

        The first series is read before the head is yielded, so a missing or
        damaged export fails before any byte is sent.
        """
        key = blocks_key(self.job_id)
        index = self.series
        metadata = timeseries_metadata(self.query, sum(e.samples for e in index))
        listing = [(e.name, e.samples) for e in index]
        pieces = await asyncio.to_thread(_pieces, self.wanted)
        lengths: list[int] = []
        crcs: list[int] = []

        async def part(i: int) -> bytes:
            data = await _reencoded(self.store, key, i, index[i], pieces.part)
            self.encoded += 1
            if self.layout is not None:  # its length was announced: hold it to that
                await self._check(i, data)
            lengths.append(len(data))
            crcs.append(zlib.crc32(data))
            return data

        try:
            head = await _to_thread_to_the_end(pieces.head, metadata, listing)
            first = await part(0) if index else None
            if head:  # Parquet's is empty: its magic comes with the first part
                yield head
            if first is not None:
                yield first
            for i in range(1, len(index)):
                yield await part(i)
            tail = await _to_thread_to_the_end(pieces.tail, metadata, listing)
            if self.layout is not None and (head, tail) != (self.layout.head, self.layout.tail):
                await self._mismatch("the head or tail")
            yield tail
        finally:
            pieces.close()
        if self.layout is None:
            self.layout = Layout(head, tail, tuple(lengths), tuple(crcs))
            key = conversion_key(self.job_id, self.wanted)
            await self.store.put(
                key, self.layout.to_json(self.etag, self.wanted), None, "application/json"
            )
            # A job deleted (or swept) while this pass ran leaves nothing to index, and
            # nothing would ever delete the index: it goes too.
            if await self.store.head(metadata_key(self.job_id)) is None:
                await self.store.delete(key)

    async def span(self, start: int, end: int) -> AsyncGenerator[bytes, None]:
        """Bytes [start, end) of the document (its layout known: see `measure`),
        encoding only the series that overlap them."""
        layout = self.layout
        if layout is None:
            raise RuntimeError("measure the conversion (`measured`) before asking for a range")
        key = blocks_key(self.job_id)
        encode = functools.partial(_part_alone, self.wanted)
        position = 0
        pieces: list[bytes | int] = [layout.head, *range(len(layout.lengths)), layout.tail]
        for piece in pieces:
            length = len(piece) if isinstance(piece, bytes) else layout.lengths[piece]
            lo, hi = max(start, position), min(end, position + length)
            if lo < hi:
                if isinstance(piece, bytes):
                    data = piece
                else:
                    data = await _reencoded(self.store, key, piece, self.series[piece], encode)
                    self.encoded += 1
                    await self._check(piece, data)
                yield data[lo - position : hi - position]
            position += length
            if position >= end:
                return

    async def _check(self, i: int, data: bytes) -> None:
        layout = self.layout
        assert layout is not None
        if len(data) != layout.lengths[i] or zlib.crc32(data) != layout.crcs[i]:
            await self._mismatch(f"series {i} ({self.series[i].name!r})")

    async def _mismatch(self, what: str) -> None:
        """Refuse to splice: `CorruptObject`, after deleting the index (the next request
        records the layout afresh rather than failing for good)."""
        key = conversion_key(self.job_id, self.wanted)
        logger.error("job %s: %s re-encoded to other bytes than %s records", self.job_id, what, key)
        await self.store.delete(key)
        raise CorruptObject(key, f"{what} re-encoded to other bytes than the index records")


def _part_alone(rep: Representation, item: RawItem, index: int) -> bytes:
    """Part `index` of a document in `rep`, encoded on its own (see `Conversion`)."""
    pieces = _pieces(rep)
    try:
        part = pieces.part(item, index)
    finally:
        pieces.close()
    if rep.format == "parquet" and index > 0:
        # A fresh writer starts its file with the magic; in the document only the first does.
        part = part.removeprefix(PARQUET_MAGIC)
    return part


_Encode = Callable[[RawItem, int], bytes]


async def _reencoded(
    store: ObjectStore, key: str, index: int, entry: _Indexed, encode: _Encode
) -> bytes:
    block = await store.get_range(key, entry.offset, entry.offset + entry.length)
    # Waited for even when cancelled: `encode` may write into pieces the caller closes.
    return await _to_thread_to_the_end(_block_to_part, block, key, index, entry, encode)


def _block_to_part(block: bytes, key: str, index: int, entry: _Indexed, encode: _Encode) -> bytes:
    where = f"series {index} ({entry.name!r})"
    try:
        name, ts, values, _ = decode_block(block)
    except BlockDecodeError as exc:
        raise CorruptObject(key, f"{where}: {exc}") from exc
    if name != entry.name or len(ts) != entry.samples:
        raise CorruptObject(
            key, f"{where}: the block holds {name!r} with {len(ts)} samples, not the indexed one"
        )
    return encode((name, ts, values), index)


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
