"""Byte ranges of converted job downloads, through the real service: every representation a
result converts to answers `Range` exactly as the stored one does (206 / 416, `If-Range`,
several ranges), each slice equal to the same slice of the whole converted download, and a
range encodes only the series it overlaps (counted by `/metrics`)."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
from typing import Any

import pytest

from acechart.jobs import Job, export
from acechart.wire import Representation
from tests.conftest import TOKEN
from tests.jobs_support import Stack, StackFactory
from tests.server_helpers import ClientFactory, unlabelled
from tests.test_job_routes import OWNER, Client, client_for, submit_and_finish

#: Every representation a JSON result converts to (query string), and the reverse trip.
FROM_JSON = {
    "format=msgpack": Representation("msgpack", "rows"),
    "format=msgpack&layout=columns": Representation("msgpack", "columns"),
    "format=csv": Representation("csv", "rows"),
    "format=arrow": Representation("arrow", "series"),
    "format=parquet": Representation("parquet", "series"),
}
RANDOM_RANGES = 12
SERIES = 4
"""Points of the tests' jobs: a result of that many series."""


async def encoded_so_far(client: Client) -> float:
    text = unlabelled(await (await client.get("/metrics")).text())
    found = re.search(r"^acechart_job_converted_series_total (\S+)$", text, re.M)
    assert found is not None
    return float(found.group(1))


async def ranged(client: Client, url: str, spec: str, **headers: str) -> tuple[Any, bytes]:
    resp = await client.get(url, headers={**OWNER, "Range": spec, **headers})
    return resp, await resp.read()


async def layout_of(stack: Stack, job_id: str, rep: Representation) -> dict[str, Any]:
    index: dict[str, Any] = json.loads(await stack.store.get(export.conversion_key(job_id, rep)))
    return index


async def check_ranges(
    client: Client, stack: Stack, job_id: str, query: str, rep: Representation, seed: int
) -> None:
    url = f"/api/jobs/{job_id}/result?{query}"
    before = await encoded_so_far(client)
    # Resumed before any whole download: the length is found by encoding it once.
    resp, head = await ranged(client, url, "bytes=0-99")
    assert resp.status == 206, (query, await resp.text())
    etag = resp.headers["ETag"]
    size = int(resp.headers["Content-Range"].rpartition("/")[2])
    index = await layout_of(stack, job_id, rep)
    series = len(index["lengths"])
    assert series == SERIES and index["etag"] == etag
    # every series once to measure, then the first again if the 100 bytes reach past the head
    again = 1 if _head_length(index) < 100 else 0
    assert await encoded_so_far(client) - before == series + again

    resp = await client.get(url, headers=OWNER)
    whole = await resp.read()
    assert resp.status == 200 and resp.headers["Content-Length"] == str(size) == str(len(whole))
    assert resp.headers["ETag"] == etag and resp.headers["Accept-Ranges"] == "bytes"
    assert "Content-Encoding" not in resp.headers
    assert head == whole[:100]

    rng = random.Random(seed)
    for _ in range(RANDOM_RANGES):
        a = rng.randrange(size)
        b = rng.randrange(a, size)
        resp, data = await ranged(client, url, f"bytes={a}-{b}")
        assert resp.status == 206 and resp.headers["Content-Range"] == f"bytes {a}-{b}/{size}"
        assert data == whole[a : b + 1], (query, a, b)
        assert resp.headers["Content-Length"] == str(b + 1 - a)

    cases = {
        "bytes=0-0": whole[:1],
        f"bytes={size - 1}-{size - 1}": whole[-1:],
        f"bytes={size - 1}-": whole[-1:],
        "bytes=-1": whole[-1:],
        "bytes=-300": whole[-300:],
        f"bytes=-{size + 10}": whole,
        f"bytes={size // 2}-": whole[size // 2 :],
        f"bytes=5-{size + 1000}": whole[5:],
    }
    for spec, want in cases.items():
        resp, data = await ranged(client, url, spec)
        assert resp.status == 206 and data == want, (query, spec)

    for spec in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=-0"):
        resp, _ = await ranged(client, url, spec)
        assert resp.status == 416, (query, spec)
        assert resp.headers["Content-Range"] == f"bytes */{size}"

    resp, data = await ranged(client, url, "bytes=0-9", **{"If-Range": '"stale"'})
    assert resp.status == 200 and data == whole
    resp, data = await ranged(client, url, "bytes=0-9", **{"If-Range": etag})
    assert resp.status == 206 and data == whole[:10]
    resp, data = await ranged(client, url, "bytes=0-1,5-6")
    assert resp.status == 200 and data == whole  # several ranges: all of it, as stored
    resp = await client.get(url, headers={**OWNER, "If-None-Match": etag})
    assert resp.status == 304
    resp = await client.head(url, headers={**OWNER, "Range": "bytes=10-19"})
    assert resp.status == 206 and resp.headers["Content-Length"] == "10"

    # A range inside one series encodes that series alone; near the end, the last one.
    lengths = index["lengths"]
    starts = [_head_length(index) + sum(lengths[:i]) for i in range(series)]
    for i in (series - 1, 1):
        if lengths[i] < 2:
            continue
        before = await encoded_so_far(client)
        lo, hi = starts[i], starts[i] + lengths[i] - 1
        resp, data = await ranged(client, url, f"bytes={lo + 1}-{hi}")
        assert resp.status == 206 and data == whole[lo + 1 : hi + 1]
        assert await encoded_so_far(client) - before == 1, (query, i)
    before = await encoded_so_far(client)
    tail = _tail_length(index)
    if tail:
        resp, data = await ranged(client, url, f"bytes=-{tail}")
        assert data == whole[-tail:] and await encoded_so_far(client) == before


def _head_length(index: dict[str, Any]) -> int:
    return len(_bytes(index["head"]))


def _tail_length(index: dict[str, Any]) -> int:
    return len(_bytes(index["tail"]))


def _bytes(text: str) -> bytes:
    return base64.b64decode(text)


async def ranged_service(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> tuple[Stack, Client, str]:
    """A service that takes many ranged requests, and a finished `SERIES`-point JSON job."""
    stack = await stacks.open(rate_limit_per_minute=10_000)
    client = await client_for(stack, aiohttp_client)
    return stack, client, await submit_and_finish(client, stack, n=SERIES, format="json")


async def msgpack_conversion(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> tuple[Stack, Job, export.Conversion]:
    """A `ranged_service` job and its MessagePack rows conversion, not encoded yet."""
    stack, _, job_id = await ranged_service(stacks, aiohttp_client)
    job = await stack.jobs.get(job_id, TOKEN)
    assert job is not None and job.result_key is not None
    stored = await stack.store.head(job.result_key)
    assert stored is not None
    return stack, job, await stack.jobs.conversion(job, Representation("msgpack", "rows"), stored)


async def test_every_conversion_answers_ranges_like_the_stored_result(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    stack, client, json_job = await ranged_service(stacks, aiohttp_client)
    for seed, (query, rep) in enumerate(FROM_JSON.items()):
        await check_ranges(client, stack, json_job, query, rep, seed)
    msgpack_job = await submit_and_finish(client, stack, n=SERIES, format="msgpack")
    await check_ranges(client, stack, msgpack_job, "format=json", Representation(), 99)


async def test_a_whole_download_records_the_layout_and_a_bad_one_is_never_trusted(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    stack, client, job_id = await ranged_service(stacks, aiohttp_client)
    rep = Representation("msgpack", "rows")
    url = f"/api/jobs/{job_id}/result?format=msgpack"
    key = export.conversion_key(job_id, rep)

    # The first whole download is chunked (its length is not known yet) and records it.
    resp = await client.get(url, headers=OWNER)
    whole = await resp.read()
    assert resp.status == 200 and "Content-Length" not in resp.headers
    etag = resp.headers["ETag"]
    stored = await client.head(f"/api/jobs/{job_id}/result", headers=OWNER)
    assert etag.startswith('"') and etag != stored.headers["ETag"]
    index = await layout_of(stack, job_id, rep)
    assert _head_length(index) + sum(index["lengths"]) + _tail_length(index) == len(whole)
    resp = await client.head(url, headers=OWNER)
    assert resp.headers["Content-Length"] == str(len(whole))
    # Asked again, it is sent from the recorded layout: the same tag and bytes, its length.
    resp = await client.get(url, headers=OWNER)
    assert resp.headers["ETag"] == etag and resp.headers["Content-Length"] == str(len(whole))
    assert await resp.read() == whole

    # An index left by another encoder (another ETag) or damaged is rebuilt, not used.
    for junk in (json.dumps({**index, "etag": '"older"', "lengths": [1] * 4}).encode(), b"{"):
        await stack.store.put(key, junk, None, "application/json")
        resp, data = await ranged(client, url, "bytes=50-")
        assert resp.status == 206 and data == whole[50:]
        assert (await layout_of(stack, job_id, rep))["lengths"] == index["lengths"]

    # A part that no longer re-encodes to what the index recorded is refused, not spliced.
    tampered = {**index, "crc32": [c ^ 1 for c in index["crc32"]]}
    await stack.store.put(key, json.dumps(tampered).encode(), None, "application/json")
    start = _head_length(index) + 1
    resp, body = await ranged(client, url, f"bytes={start}-{start + 10}")
    assert resp.status == 503 and json.loads(body)["error"] == "storage_unavailable"
    # ... and the index is dropped, so the next request records the layout afresh.
    assert await stack.store.head(key) is None
    resp, data = await ranged(client, url, f"bytes={start}-{start + 10}")
    assert resp.status == 206 and data == whole[start : start + 11]
    assert (await layout_of(stack, job_id, rep))["crc32"] == index["crc32"]

    # Concurrent first ranges of a conversion (a download manager's connections) share
    # one measuring pass: each series is encoded once, and none again for head bytes.
    rep = Representation("csv", "rows")
    url = f"/api/jobs/{job_id}/result?format=csv"
    before = await encoded_so_far(client)
    answers = await asyncio.gather(*(ranged(client, url, "bytes=0-4") for _ in range(4)))
    assert all(resp.status == 206 and data == b"time," for resp, data in answers)
    assert await encoded_so_far(client) - before == 4

    # Deleting the job deletes its conversion indexes with the result.
    resp = await client.delete(f"/api/jobs/{job_id}", headers=OWNER)
    assert resp.status == 204
    assert await stack.store.head(key) is None


@pytest.mark.parametrize("spec", ["bytes=abc", "bytes=5-2", "bytes=0-1,5-6", "items=0-9"])
async def test_a_range_ignored_anyway_does_not_measure_a_conversion_first(
    stacks: StackFactory, aiohttp_client: ClientFactory, spec: str
) -> None:
    """A malformed range, several, or another unit is answered whole: the conversion is
    encoded once, for that answer, not first measured for a range that is not used."""
    _, client, job_id = await ranged_service(stacks, aiohttp_client)
    url = f"/api/jobs/{job_id}/result?format=msgpack"
    before = await encoded_so_far(client)
    resp, _ = await ranged(client, url, spec)
    assert resp.status == 200 and "Content-Range" not in resp.headers
    assert await encoded_so_far(client) - before == SERIES
    again, _ = await ranged(client, url, "bytes=0-9")
    assert again.status == 206  # from the head the whole answer recorded: nothing encoded
    assert await encoded_so_far(client) - before == SERIES


async def test_a_job_deleted_while_its_conversion_is_encoded_leaves_no_index(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    """The index is written after the last byte; a job deleted just before that (its
    outputs dropped) would keep an index nothing ever deletes."""
    stack, job, conversion = await msgpack_conversion(stacks, aiohttp_client)
    job_id, rep = job.id, conversion.wanted
    chunks = conversion.whole()
    for _ in range(SERIES + 2):  # the head, every series, the tail: all read
        await anext(chunks)
    await export.drop_outputs(stack.store, job_id)
    assert [chunk async for chunk in chunks] == []
    assert await stack.store.head(export.conversion_key(job_id, rep)) is None


async def test_a_measuring_pass_its_requester_left_is_counted_whole(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    """The pass runs on when the request that started it goes away; the series it encodes
    after that are counted all the same, and the requester's own count holds none."""
    stack, job, conversion = await msgpack_conversion(stacks, aiohttp_client)
    job_id, rep = job.id, conversion.wanted
    counted: list[int] = []
    waiter = asyncio.ensure_future(stack.jobs.measure(job, conversion, counted.append))
    await asyncio.sleep(0)
    (task,) = stack.jobs._measuring.values()
    waiter.cancel()
    layout = await task
    assert waiter.cancelled() and counted == [SERIES] and conversion.encoded == 0
    assert (await layout_of(stack, job_id, rep))["lengths"] == list(layout.lengths)
