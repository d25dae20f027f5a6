"""A job's result document, written series by series and read back series by series.

A year of 50 one-minute points is 26 M samples: about 650 MB of JSON. The job
never holds that document (or its samples) whole. Each format's document is a
head, one fragment per series and a tail, and the Rust encoders produce a
fragment from one series' arrays: encoding a one-series document and cutting
off its fixed wrapper. Fragments go to an anonymous spool file as each group of
points arrives, because the head carries `totalSamples`, known only at the
end; then head + spool + tail stream into the object store with `put_stream`.
The stored bytes are exactly those of the whole document encoded at once,
which the tests check against `encode_json` / `encode_msgpack` / `encode_csv`.

`metadata.json` beside the data (seed section 2.1) records each series' byte
offset and length, so a result can be converted to another format one series
at a time (`convert`) and a Range request needs no parsing at all.
"""

from __future__ import annotations

import asyncio
import json
import math
import struct
import tempfile
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import msgpack  # type: ignore[import-untyped]
import numpy as np
from numpy.typing import NDArray

from acechart import _core
from acechart.jobs.model import JobFormat, Layout
from acechart.query import Query, format_time
from acechart.result import Series
from acechart.storage.keys import export_key, export_prefix
from acechart.storage.objects import ObjectInfo, ObjectStore
from acechart.wire import RawItem, series_item
from acechart.wire import timeseries_metadata as document_metadata

__all__ = [
    "CONTENT_TYPES",
    "METADATA_FILE",
    "DocumentCodec",
    "ResultWriter",
    "SeriesEntry",
    "convert",
    "data_key",
    "document_metadata",
    "drop_outputs",
    "metadata_key",
    "series_item",
]

#: Media type of each stored format.
CONTENT_TYPES: dict[str, str] = {
    "json": "application/json",
    "msgpack": "application/x-msgpack",
    "csv": "text/csv; charset=utf-8",
}
#: The seed's `format` names in metadata.json (section 2.1 says "messagepack").
_SEED_FORMAT: dict[str, str] = {"json": "json", "msgpack": "messagepack", "csv": "csv"}
METADATA_FILE = "metadata.json"
_CSV_HEADER = b"time,point,value\r\n"
_SPOOL_READ = 1 << 20


def data_key(job_id: str, fmt: str) -> str:
    """`exports/{jobId}/data.{json|msgpack|csv}`."""
    return export_key(job_id, f"data.{fmt}")


def metadata_key(job_id: str) -> str:
    """`exports/{jobId}/metadata.json`."""
    return export_key(job_id, METADATA_FILE)


async def drop_outputs(store: ObjectStore, job_id: str) -> None:
    """Delete whatever a job stored (a finished result, or a failed run's remains)."""
    keys = [info.key async for info in store.list(export_prefix(job_id))]
    if keys:
        await store.delete_many(keys)


class DocumentCodec:
    """One format's document as head + fragments (joined by `separator`) + tail."""

    def __init__(self, fmt: JobFormat, layout: Layout = "rows") -> None:
        self.format = fmt
        self.layout = layout
        self.separator = b"," if fmt == "json" else b""
        self.tail = b"]}" if fmt == "json" else b""
        if fmt == "json":
            self._wrapper = b'{"metadata":{},"series":['
        elif fmt == "msgpack":
            # A one-series document: the empty document without its empty-array byte
            # (0x90), then a one-element array header (0x91).
            self._wrapper = _core.encode_msgpack({}, [], layout)[:-1] + b"\x91"
        else:
            self._wrapper = _CSV_HEADER

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]

    def head(self, metadata: dict[str, Any], n_series: int) -> bytes:
        """Everything before the first fragment."""
        if self.format == "json":
            empty = _core.encode_json(metadata, [])
            _expect(empty.endswith(b"[]}"), "JSON document does not end with an empty series list")
            return empty[:-2]
        if self.format == "msgpack":
            empty = _core.encode_msgpack(metadata, [], self.layout)
            _expect(empty.endswith(b"\x90"), "MessagePack document does not end with [] ")
            return empty[:-1] + _array_header(n_series)
        return _CSV_HEADER

    def fragment(self, item: RawItem) -> memoryview:
        """One series' bytes as they appear inside the document (no copy of the body)."""
        if self.format == "json":
            doc = _core.encode_json({}, [item])
            end = len(doc) - 2
        elif self.format == "msgpack":
            doc = _core.encode_msgpack({}, [item], self.layout)
            end = len(doc)
        else:
            doc = _core.encode_csv([item])
            end = len(doc)
        _expect(doc.startswith(self._wrapper), f"unexpected {self.format} wrapper of a series")
        return memoryview(doc)[len(self._wrapper) : end]


@dataclass(frozen=True)
class SeriesEntry:
    """Where one series lies in the stored document."""

    name: str
    samples: int
    offset: int
    length: int


@dataclass
class ResultWriter:
    """Collects fragments in a spool file, then stores the whole document in one stream."""

    codec: DocumentCodec
    spool_dir: Path
    entries: list[SeriesEntry] = field(default_factory=list)
    _spool: IO[bytes] | None = None
    _size: int = 0

    @property
    def total_samples(self) -> int:
        return sum(e.samples for e in self.entries)

    async def add(self, series: Sequence[Series]) -> None:
        """Encode and spool series in order (in a thread: the encoders release the GIL)."""
        for s in series:
            await asyncio.to_thread(self._add_one, series_item(s))

    def _add_one(self, item: RawItem) -> None:
        if self._spool is None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            # Open across many calls and closed by `close`: no `with` can span that.
            self._spool = tempfile.TemporaryFile(dir=self.spool_dir, prefix="job-")  # noqa: SIM115
        fragment = self.codec.fragment(item)
        if self.entries and self.codec.separator:
            self._spool.write(self.codec.separator)
            self._size += len(self.codec.separator)
        self.entries.append(SeriesEntry(item[0], len(item[1]), self._size, len(fragment)))
        self._spool.write(fragment)
        self._size += len(fragment)

    async def store(
        self,
        store: ObjectStore,
        key: str,
        metadata: dict[str, Any],
        *,
        progress: Callable[[float], None] | None = None,
    ) -> tuple[ObjectInfo, list[SeriesEntry]]:
        """Stream head + spool + tail to `key`; returns the object and the series offsets."""
        head = self.codec.head(metadata, len(self.entries))
        total = len(head) + self._size + len(self.codec.tail)
        spool = self._spool

        async def chunks() -> AsyncIterator[bytes]:
            yield head
            sent = len(head)
            if spool is not None:
                await asyncio.to_thread(spool.seek, 0)
                while chunk := await asyncio.to_thread(spool.read, _SPOOL_READ):
                    sent += len(chunk)
                    if progress is not None:
                        progress(sent / total)
                    yield chunk
            yield self.codec.tail

        info = await store.put_stream(
            key, chunks(), {"format": self.codec.format}, self.codec.content_type
        )
        shifted = [
            SeriesEntry(e.name, e.samples, e.offset + len(head), e.length) for e in self.entries
        ]
        return info, shifted

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()
            self._spool = None


def export_metadata(
    *,
    job_id: str,
    key: str,
    query: Query,
    fmt: JobFormat,
    layout: Layout,
    entries: Sequence[SeriesEntry],
    size: int,
    created_at: int,
    expires_at: int,
) -> dict[str, Any]:
    """The seed's metadata.json (section 2.1) for one export, plus the series index."""
    meta: dict[str, Any] = {
        "key": key,
        "pointNames": list(query.points),
        "siteId": query.site,
        "startTime": format_time(query.start_ms),
        "endTime": format_time(query.end_ms),
        "totalPoints": len(query.points),
        "totalSamples": sum(e.samples for e in entries),
        "aggregation": query.interval,
        "format": _SEED_FORMAT[fmt],
        "compression": "none",
        "createdAt": format_time(created_at * 1000),
        "expiresAt": format_time(expires_at * 1000),
        "sizeBytes": size,
        "jobId": job_id,
        "layout": layout,
        "contentType": CONTENT_TYPES[fmt],
        "series": [
            {"name": e.name, "samples": e.samples, "offset": e.offset, "length": e.length}
            for e in entries
        ],
    }
    if query.max_points is not None:
        meta["downsample"] = query.downsample or "minmaxlttb"
        meta["maxPoints"] = query.max_points
    return meta


async def convert(
    store: ObjectStore,
    query: Query,
    stored: tuple[JobFormat, Layout],
    wanted: tuple[JobFormat, Layout],
    key: str,
    index: Sequence[dict[str, Any]],
) -> AsyncGenerator[bytes, None]:
    """The stored document re-encoded in another format, one series at a time.

    Each series is read with one ranged get (its offset and length from the
    index), decoded to arrays and encoded again, so memory holds one series.
    """
    codec = DocumentCodec(*wanted)
    total = sum(int(e["samples"]) for e in index)
    yield codec.head(document_metadata(query, total), len(index))
    for i, entry in enumerate(index):
        offset, length = int(entry["offset"]), int(entry["length"])
        raw = await store.get_range(key, offset, offset + length)
        fragment = await asyncio.to_thread(_reencode, raw, entry["name"], stored, codec)
        if i and codec.separator:
            yield codec.separator
        yield fragment
    yield codec.tail


def _reencode(
    raw: bytes, name: str, stored: tuple[JobFormat, Layout], codec: DocumentCodec
) -> bytes:
    ts, values = decode_fragment(raw, stored)
    return bytes(codec.fragment((name, ts, values)))


def decode_fragment(
    raw: bytes, stored: tuple[JobFormat, Layout]
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """One stored series fragment back to (ts, values)."""
    fmt, layout = stored
    if fmt == "csv":
        return _decode_csv(raw)
    obj = json.loads(raw) if fmt == "json" else msgpack.unpackb(raw)
    if not isinstance(obj, dict):
        raise ValueError("a series fragment must decode to a map")
    if fmt == "msgpack" and layout == "columns":
        t = np.frombuffer(obj["t"], "<f8")
        return t.astype(np.int64), np.frombuffer(obj["v"], "<f8").astype(np.float64)
    pairs = np.array(obj["data"], dtype=np.float64).reshape(-1, 2)
    return pairs[:, 0].astype(np.int64), np.ascontiguousarray(pairs[:, 1])


def _decode_csv(raw: bytes) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """`time,point,value` rows of one point; the name may be quoted, never the other fields."""
    lines = raw.decode().split("\r\n")
    if lines and not lines[-1]:
        lines.pop()
    times = [line.partition(",")[0].removesuffix("Z") for line in lines]
    values = [_csv_float(line.rpartition(",")[2]) for line in lines]
    ts = np.array(times, dtype="datetime64[ms]").astype(np.int64)
    return ts, np.array(values, dtype=np.float64)


def _csv_float(text: str) -> float:
    return math.nan if not text else float(text)


def _array_header(n: int) -> bytes:
    """MessagePack array header for `n` elements, in the smallest form (as packb picks)."""
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + struct.pack(">H", n)
    return b"\xdd" + struct.pack(">I", n)


def _expect(ok: bool, what: str) -> None:
    """Guard the encoders' framing the cutting relies on; a change there must fail loudly."""
    if not ok:
        raise RuntimeError(f"document framing changed: {what}")
