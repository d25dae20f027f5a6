"""The ObjectStore conformance suite, run on LocalObjectStore and on S3ObjectStore (moto).

The first part runs every test against both backends (the `object_store`
fixture); then come the behaviours only one backend has: the local store's
atomic writes and crash leftovers, S3 listing pagination, prefixes and errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from acechart.storage import (
    CorruptObject,
    InvalidKey,
    InvalidMetadata,
    LocalObjectStore,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageError,
)
from acechart.storage.s3 import S3ObjectStore
from tests.storage_fixtures import MotoS3, local_store, moto_s3, object_store, s3_store

__all__ = ["local_store", "moto_s3", "object_store", "s3_store"]  # fixtures used here

MiB = 1024 * 1024


def payload(n: int, seed: int = 0) -> bytes:
    """Deterministic random bytes: a range read at the wrong offset would show."""
    return random.Random(seed).randbytes(n)


async def chunked(data: bytes, sizes: list[int]) -> AsyncIterator[bytes]:
    """`data` as chunks of the given sizes (cycled), to feed put_stream."""
    pos, i = 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        yield data[pos : pos + size]
        pos += size
        i += 1
        await asyncio.sleep(0)


async def keys_of(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


# --- conformance: both backends ---------------------------------------------------


def test_both_backends_satisfy_the_protocol(tmp_path: Path) -> None:
    assert isinstance(LocalObjectStore(tmp_path), ObjectStore)
    assert isinstance(S3ObjectStore("http://127.0.0.1:1", "bucket"), ObjectStore)


async def test_put_get_head_round_trip(object_store: ObjectStore) -> None:
    data = payload(10_000)
    before = datetime.now(UTC) - timedelta(seconds=5)
    put = await object_store.put(
        "timeseries/site/abc/2025-01.blk",
        data,
        {"samples": "42", "x-codec": "zstd"},
        "application/x-acechart-block",
    )
    assert await object_store.get("timeseries/site/abc/2025-01.blk") == data
    head = await object_store.head("timeseries/site/abc/2025-01.blk")
    assert head is not None
    assert head.key == "timeseries/site/abc/2025-01.blk"
    assert head.size == len(data) == put.size
    assert head.etag and head.etag == put.etag and '"' not in head.etag
    assert head.metadata == {"samples": "42", "x-codec": "zstd"} == put.metadata
    assert head.content_type == "application/x-acechart-block" == put.content_type
    assert head.last_modified.tzinfo is not None
    assert before <= head.last_modified <= datetime.now(UTC) + timedelta(seconds=5)


async def test_defaults_without_metadata_or_content_type(object_store: ObjectStore) -> None:
    await object_store.put("a", b"x")
    head = await object_store.head("a")
    assert head is not None
    assert head.metadata == {}
    assert head.content_type == "application/octet-stream"


async def test_empty_object(object_store: ObjectStore) -> None:
    await object_store.put("empty", b"")
    assert await object_store.get("empty") == b""
    head = await object_store.head("empty")
    assert head is not None and head.size == 0
    assert [c async for c in object_store.iter_chunks("empty", 4)] == []
    assert await object_store.get_range("empty", 0, 10) == b""


async def test_overwrite_replaces_bytes_metadata_and_etag(object_store: ObjectStore) -> None:
    first = await object_store.put("k", b"first version", {"v": "1", "old": "yes"}, "text/plain")
    second = await object_store.put("k", b"second", {"v": "2"})
    assert await object_store.get("k") == b"second"
    head = await object_store.head("k")
    assert head is not None
    assert head.metadata == {"v": "2"}  # replaced, not merged
    assert head.content_type == "application/octet-stream"
    assert head.size == 6
    assert first.etag != second.etag == head.etag
    assert await keys_of(object_store) == ["k"]


async def test_missing_objects(object_store: ObjectStore) -> None:
    with pytest.raises(ObjectNotFound) as info:
        await object_store.get("no/such/key")
    assert isinstance(info.value, KeyError) and isinstance(info.value, StorageError)
    assert "no/such/key" in str(info.value) and info.value.key == "no/such/key"
    assert await object_store.head("no/such/key") is None
    with pytest.raises(ObjectNotFound):
        await object_store.get_range("no/such/key", 0, 10)
    with pytest.raises(ObjectNotFound):
        await object_store.get_range("no/such/key", 3, 3)
    with pytest.raises(ObjectNotFound):
        async for _ in object_store.iter_chunks("no/such/key"):
            pass


async def test_missing_object_below_an_existing_one(object_store: ObjectStore) -> None:
    await object_store.put("a/b", b"x")
    with pytest.raises(ObjectNotFound):
        await object_store.get("a/b/c")
    with pytest.raises(ObjectNotFound):
        await object_store.get("a")
    assert await object_store.head("a/b/c") is None


@pytest.mark.parametrize(
    ("start", "end", "want"),
    [
        (0, 5, slice(0, 5)),
        (100, 1_100, slice(100, 1_100)),
        (4_000, 4_096, slice(4_000, 4_096)),
        (4_000, 9_999, slice(4_000, 4_096)),  # clipped to the size
        (7, 7, slice(0, 0)),  # empty range
        (4_096, 5_000, slice(0, 0)),  # starts at the end
        (9_000, 9_001, slice(0, 0)),  # starts past the end
    ],
)
async def test_get_range(object_store: ObjectStore, start: int, end: int, want: slice) -> None:
    data = payload(4_096)
    await object_store.put("r", data)
    assert await object_store.get_range("r", start, end) == data[want]


@pytest.mark.parametrize(("start", "end"), [(5, 4), (-1, 3), (0, -2)])
async def test_get_range_rejects_bad_bounds(
    object_store: ObjectStore, start: int, end: int
) -> None:
    await object_store.put("r", b"0123456789")
    with pytest.raises(ValueError):
        await object_store.get_range("r", start, end)


@pytest.mark.parametrize("chunk_size", [7, 1000, 4096, 10_000, 1 << 20])
async def test_iter_chunks(object_store: ObjectStore, chunk_size: int) -> None:
    data = payload(10_000)
    await object_store.put("c", data)
    chunks = [c async for c in object_store.iter_chunks("c", chunk_size)]
    assert b"".join(chunks) == data
    assert all(len(c) == chunk_size for c in chunks[:-1])
    assert 0 < len(chunks[-1]) <= chunk_size


async def test_iter_chunks_can_stop_early_and_rejects_bad_size(object_store: ObjectStore) -> None:
    await object_store.put("c", payload(50_000))
    async with contextlib.aclosing(object_store.iter_chunks("c", 1000)) as chunks:
        async for first in chunks:
            assert first == payload(50_000)[:1000]
            break
    with pytest.raises(ValueError):
        async for _ in object_store.iter_chunks("c", 0):
            pass
    assert await object_store.get("c") == payload(50_000)


async def test_put_stream_small(object_store: ObjectStore) -> None:
    data = payload(100_000)
    info = await object_store.put_stream(
        "s/small.csv", chunked(data, [1, 999, 30_000]), {"rows": "7"}, "text/csv"
    )
    assert info.size == len(data)
    assert await object_store.get("s/small.csv") == data
    head = await object_store.head("s/small.csv")
    assert head is not None and head.size == len(data) and head.etag == info.etag
    assert head.metadata == {"rows": "7"} and head.content_type == "text/csv"


async def test_put_stream_large_is_multipart(object_store: ObjectStore) -> None:
    data = payload(11 * MiB + 12_345, seed=3)
    info = await object_store.put_stream(
        "exports/job1/data.msgpack", chunked(data, [MiB - 1, 3 * MiB + 7]), {"job": "job1"}
    )
    assert info.size == len(data)
    head = await object_store.head("exports/job1/data.msgpack")
    assert head is not None and head.size == len(data) and head.metadata == {"job": "job1"}
    assert (
        await object_store.get_range("exports/job1/data.msgpack", 5 * MiB - 3, 5 * MiB + 3)
        == data[5 * MiB - 3 : 5 * MiB + 3]
    )
    assert await object_store.get("exports/job1/data.msgpack") == data


async def test_put_stream_of_nothing(object_store: ObjectStore) -> None:
    info = await object_store.put_stream("nothing", chunked(b"", [1]))
    assert info.size == 0
    assert await object_store.get("nothing") == b""


@pytest.mark.parametrize("size", [1000, 6 * MiB])
async def test_failed_put_stream_keeps_the_old_object(object_store: ObjectStore, size: int) -> None:
    await object_store.put("job/out", b"old bytes")

    async def failing() -> AsyncIterator[bytes]:
        yield payload(size)
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError, match="source died"):
        await object_store.put_stream("job/out", failing())
    assert await object_store.get("job/out") == b"old bytes"
    assert await keys_of(object_store) == ["job/out"]


async def test_list_by_prefix_sorted(object_store: ObjectStore) -> None:
    keys = [
        "timeseries/s1/aaaa/2025-01.blk",
        "timeseries/s1/aaaa/2025-02.blk",
        "timeseries/s1/bbbb/2025-01.blk",
        "timeseries/s10/cccc/2025-01.blk",
        "timeseries/s2/dddd/2025-01.blk",
        "exports/j1/data.csv",
        "a-b",
        "a/b",
        "top",
    ]
    for i, key in enumerate(keys):
        await object_store.put(key, payload(i + 1), {"i": str(i)})
    assert await keys_of(object_store) == sorted(keys)
    assert await keys_of(object_store, "timeseries/s1/") == sorted(keys[:3])
    assert await keys_of(object_store, "timeseries/s1") == sorted(keys[:4])  # mid-segment prefix
    assert await keys_of(object_store, "timeseries/s1/aaaa/2025-0") == keys[:2]
    assert await keys_of(object_store, "exports/") == ["exports/j1/data.csv"]
    assert await keys_of(object_store, "a") == ["a-b", "a/b"]  # byte order: '-' < '/'
    assert await keys_of(object_store, "nothing/here/") == []
    infos: list[ObjectInfo] = [info async for info in object_store.list("timeseries/s1/aaaa/")]
    for info in infos:
        head = await object_store.head(info.key)
        assert head is not None
        assert (info.size, info.etag) == (head.size, head.etag)
        assert info.metadata is None and info.content_type is None  # listings do not carry them
        assert info.last_modified.tzinfo is not None


async def test_unicode_and_spaces_in_keys(object_store: ObjectStore) -> None:
    key = "exports/jöb 1/dätä (1).csv"
    await object_store.put(key, b"ok")
    assert await object_store.get(key) == b"ok"
    assert await keys_of(object_store, "exports/jöb 1/") == [key]


async def test_delete_is_idempotent(object_store: ObjectStore) -> None:
    await object_store.put("d/1", b"1")
    await object_store.put("d/2", b"2")
    await object_store.delete("d/1")
    await object_store.delete("d/1")
    await object_store.delete("never/existed")
    assert await object_store.head("d/1") is None
    assert await keys_of(object_store) == ["d/2"]


async def test_delete_many(object_store: ObjectStore) -> None:
    for i in range(12):
        await object_store.put(f"m/{i:02d}", b"x")
    await object_store.delete_many([f"m/{i:02d}" for i in range(0, 12, 2)] + ["m/missing"])
    assert await keys_of(object_store) == [f"m/{i:02d}" for i in range(1, 12, 2)]
    await object_store.delete_many([])
    await object_store.delete_many(f"m/{i:02d}" for i in range(12))
    assert await keys_of(object_store) == []


BAD_KEYS = [
    "",
    "/abs/path",
    "../escape",
    "a/../../escape",
    "a/./b",
    "a//b",
    "trailing/",
    ".hidden",
    "a/.tmp",
    "nul\x00byte",
    "new\nline",
    "back\\slash",
    "x" * 1025,
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: repr(k)[:20])
async def test_bad_keys_are_rejected_before_any_io(object_store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await object_store.put(key, b"x")
    with pytest.raises(InvalidKey):
        await object_store.get(key)
    with pytest.raises(InvalidKey):
        await object_store.head(key)
    with pytest.raises(InvalidKey):
        await object_store.delete(key)
    with pytest.raises(InvalidKey):
        await object_store.delete_many(["fine", key])
    with pytest.raises(ValueError):  # InvalidKey is a ValueError too
        await object_store.get_range(key, 0, 1)
    assert await keys_of(object_store) == []


@pytest.mark.parametrize(
    "metadata",
    [
        {"Upper": "x"},
        {"under_score": "x"},
        {"k": "naïve"},
        {"k": "line\nbreak"},
        {"": "x"},
        {"k": "x" * 3000},
    ],
)
async def test_bad_metadata_is_rejected(
    object_store: ObjectStore, metadata: dict[str, str]
) -> None:
    with pytest.raises(InvalidMetadata):
        await object_store.put("k", b"x", metadata)
    with pytest.raises(InvalidMetadata):
        await object_store.put_stream("k", chunked(b"x", [1]), metadata)
    assert await object_store.head("k") is None


async def test_concurrent_writers_never_mix(object_store: ObjectStore) -> None:
    payloads = [bytes([i]) * 200_000 for i in range(8)]
    await asyncio.gather(*(object_store.put("race", p) for p in payloads))
    assert await object_store.get("race") in payloads
    assert await keys_of(object_store) == ["race"]


# --- LocalObjectStore only ------------------------------------------------------------


async def test_local_layout_is_the_key_path(local_store: LocalObjectStore) -> None:
    await local_store.put("timeseries/s/abcd/2025-01.blk", b"data")
    assert (local_store.root / "timeseries" / "s" / "abcd" / "2025-01.blk").is_file()


async def test_local_crash_before_rename_keeps_the_old_object(
    local_store: LocalObjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await local_store.put("blk", b"old", {"v": "1"})

    def crash(src: object, dst: object) -> None:
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StorageError, match="simulated crash"):
        await local_store.put("blk", b"new bytes that never land", {"v": "2"})
    with pytest.raises(StorageError, match="simulated crash"):
        await local_store.put_stream("blk", chunked(payload(3 * MiB), [MiB]))
    monkeypatch.undo()

    assert await local_store.get("blk") == b"old"
    head = await local_store.head("blk")
    assert head is not None and head.metadata == {"v": "1"}
    assert await keys_of(local_store) == ["blk"]
    assert sorted(p.name for p in local_store.root.iterdir()) == ["blk"]  # no temp junk


async def test_local_crash_leftovers_are_invisible_and_swept(local_store: LocalObjectStore) -> None:
    await local_store.put("dir/blk", b"old")
    # What a process killed mid-write leaves: a half-written temp file beside the object.
    leftover = local_store.root / "dir" / ".0123456789abcdef.tmp"
    leftover.write_bytes(b"half of the new bl")
    assert await local_store.get("dir/blk") == b"old"
    assert await keys_of(local_store) == ["dir/blk"]
    assert await local_store.remove_stale_temp_files(3600) == 0  # young: maybe a live writer
    old = datetime.now().timestamp() - 7200
    os.utime(leftover, (old, old))
    await LocalObjectStore(local_store.root).open()  # open() sweeps temp files over an hour old
    assert not leftover.exists()
    assert await local_store.get("dir/blk") == b"old"


async def test_local_put_stream_cancelled_at_once_leaves_nothing(
    local_store: LocalObjectStore,
) -> None:
    """A writer cancelled while its temp file is being created leaves no file, open or
    on disk (a client gone mid-upload, a job stopped at shutdown)."""

    async def body() -> AsyncIterator[bytes]:
        yield b"x" * 10

    for delay in (0.0, 0.0, 0.0001, 0.0005, 0.001, 0.002):
        task = asyncio.create_task(local_store.put_stream("c/obj", body()))
        await asyncio.sleep(delay)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await asyncio.sleep(0.2)  # any create still running in its thread has finished
    root = str(local_store.root)
    opened = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith(root):
                opened.append(fd)
    assert opened == []
    assert [p.name for p in local_store.root.rglob("*.tmp")] == []


async def test_local_iter_chunks_reads_a_snapshot(local_store: LocalObjectStore) -> None:
    await local_store.put("snap", b"a" * 10_000)
    async with contextlib.aclosing(local_store.iter_chunks("snap", 4_000)) as chunks:
        got = [await anext(chunks)]
        await local_store.put("snap", b"b" * 10_000)
        got += [c async for c in chunks]
    assert b"".join(got) == b"a" * 10_000
    assert await local_store.get("snap") == b"b" * 10_000


async def test_local_corrupt_file_is_reported_not_served(local_store: LocalObjectStore) -> None:
    await local_store.put("torn", payload(1000))
    path = local_store.root / "torn"
    path.write_bytes(path.read_bytes()[:-5])  # torn footer
    with pytest.raises(CorruptObject):
        await local_store.get("torn")
    with pytest.raises(CorruptObject):
        await local_store.get_range("torn", 0, 10)
    with pytest.raises(CorruptObject):
        await local_store.head("torn")
    path.write_bytes(b"")
    with pytest.raises(CorruptObject):
        await local_store.get("torn")
    await local_store.delete("torn")
    assert not path.exists()


async def test_local_delete_prunes_empty_directories(local_store: LocalObjectStore) -> None:
    await local_store.put("a/b/c/1", b"1")
    await local_store.put("a/x", b"x")
    await local_store.delete("a/b/c/1")
    assert not (local_store.root / "a" / "b").exists()
    assert (local_store.root / "a" / "x").is_file()
    await local_store.delete_many(["a/x"])
    assert list(local_store.root.iterdir()) == []
    await local_store.put("a/b/c/2", b"2")  # directories come back on demand
    assert await local_store.get("a/b/c/2") == b"2"


async def test_local_key_that_is_a_directory(local_store: LocalObjectStore) -> None:
    await local_store.put("a/b", b"x")
    with pytest.raises(StorageError, match="directory"):
        await local_store.put("a", b"y")
    with pytest.raises(StorageError, match="parent"):
        await local_store.put("a/b/c", b"y")
    assert await local_store.get("a/b") == b"x"


async def test_local_files_are_private(local_store: LocalObjectStore) -> None:
    await local_store.put("p", b"secret")
    assert (local_store.root / "p").stat().st_mode & 0o077 == 0


# --- S3ObjectStore only ---------------------------------------------------------------


async def test_s3_listing_pages_past_1000_keys(moto_s3: MotoS3) -> None:
    prefix = "paging/"
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["global"]
    keys = [f"p/{i:05d}" for i in range(1_100)]
    for key in keys:  # straight into moto's backend: 1100 HTTP PUTs would take seconds
        backend.put_object(moto_s3.bucket, prefix + key, b"x")
    async with moto_s3.store(prefix) as store:
        assert await keys_of(store, "p/") == keys  # default page size 1000: two pages
        await store.delete_many(keys)  # two DeleteObjects requests
        assert await keys_of(store) == []


async def test_s3_small_list_pages(moto_s3: MotoS3) -> None:
    async with moto_s3.store(list_page_size=3) as store:
        keys = [f"k{i:02d}" for i in range(10)]
        await asyncio.gather(*(store.put(k, b"x") for k in keys))
        assert await keys_of(store) == keys


async def test_s3_prefixes_isolate_stores(moto_s3: MotoS3) -> None:
    async with (
        moto_s3.store("tenant-a") as a,
        moto_s3.store("tenant-b/") as b,
        moto_s3.store("") as root,
    ):
        await a.put("x", b"from a")
        await b.put("x", b"from b")
        assert await a.get("x") == b"from a" and await b.get("x") == b"from b"
        assert await keys_of(a) == ["x"]
        assert await keys_of(root, "tenant-") == ["tenant-a/x", "tenant-b/x"]
        assert await root.get("tenant-a/x") == b"from a"
        await a.delete("x")
        await b.delete("x")


async def test_s3_failed_multipart_upload_is_aborted(
    moto_s3: MotoS3, s3_store: S3ObjectStore
) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield payload(6 * MiB)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await s3_store.put_stream("aborted", failing())
    uploads = moto_s3.boto3_client().list_multipart_uploads(
        Bucket=moto_s3.bucket, Prefix=s3_store.prefix
    )
    assert uploads.get("Uploads", []) == []


async def test_s3_missing_bucket_is_a_storage_error_not_a_miss(moto_s3: MotoS3) -> None:
    store = S3ObjectStore(
        moto_s3.endpoint_url,
        "no-such-bucket",
        access_key="k",
        secret_key="s",
        session=moto_s3.session,
    )
    async with store:
        with pytest.raises(StorageError) as info:
            await store.get("some/key")
        assert not isinstance(info.value, ObjectNotFound)
        assert info.value.operation == "get" and info.value.key == "some/key"
        assert "NoSuchBucket" in str(info.value)
        with pytest.raises(StorageError, match="NoSuchBucket"):
            await store.put("some/key", b"x")
        with pytest.raises(StorageError, match="NoSuchBucket"):
            await keys_of(store)


async def test_s3_unreachable_endpoint_is_a_storage_error(moto_s3: MotoS3) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = S3ObjectStore(
        f"http://127.0.0.1:{port}",
        "b",
        access_key="k",
        secret_key="s",
        max_attempts=1,
        connect_timeout_s=2,
        session=moto_s3.session,
    )
    async with store:
        with pytest.raises(StorageError) as info:
            await store.put("k", b"x")
        assert info.value.operation == "put" and info.value.key == "k"


async def test_s3_create_bucket_is_idempotent(moto_s3: MotoS3) -> None:
    store = S3ObjectStore(
        moto_s3.endpoint_url,
        "made-by-store",
        access_key="k",
        secret_key="s",
        session=moto_s3.session,
    )
    async with store:
        await store.create_bucket()
        await store.create_bucket()
        await store.put("k", b"v")
        assert await store.get("k") == b"v"


async def test_s3_store_must_be_opened(moto_s3: MotoS3) -> None:
    store = moto_s3.store()
    with pytest.raises(StorageError, match="not open"):
        await store.get("k")
    await store.close()  # closing an unopened store is harmless


def test_s3_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError):
        S3ObjectStore(None, "b", part_size=1024)
    with pytest.raises(ValueError):
        S3ObjectStore(None, "b", list_page_size=5000)
    with pytest.raises(ValueError):
        S3ObjectStore(None, "")
    with pytest.raises(InvalidKey):
        S3ObjectStore(None, "b", prefix="../x")


async def test_local_listing_survives_a_damaged_object(local_store: LocalObjectStore) -> None:
    await local_store.put("exports/j/a.csv", b"x" * 100)
    await local_store.put("exports/j/b.csv", b"y" * 100)
    path = local_store.root / "exports" / "j" / "a.csv"
    path.write_bytes(path.read_bytes()[:50])  # torn footer
    keys = [info.key async for info in local_store.list("exports/j/")]
    assert keys == ["exports/j/a.csv", "exports/j/b.csv"]
    await local_store.delete_many(keys)
    assert [info.key async for info in local_store.list("exports/")] == []
