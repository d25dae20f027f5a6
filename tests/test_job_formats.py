"""Job results as Arrow and Parquet: stored, converted to and from, read back by pyarrow and
polars value for value against the engine's direct answer; the refusals (no `wide` table,
Parquet without pyarrow) name the parameter."""

from __future__ import annotations

import io
import itertools
import json
import math
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from acechart import _core
from acechart.jobs import export
from acechart.result import Result
from acechart.wire import ARROW_EOS, series_item, timeseries_metadata
from tests.conftest import TOKEN
from tests.jobs_support import Stack, StackFactory, encode_whole
from tests.server_helpers import ClientFactory
from tests.test_job_routes import OWNER, Client, client_for, post_body, submit_and_finish

ARROW = "application/vnd.apache.arrow.stream"
PARQUET = "application/vnd.apache.parquet"


async def direct(stack: Stack, job_id: str) -> Result:
    job = await stack.jobs.get(job_id, TOKEN)
    return await stack.runtime.engine.query(job.request.query, token=TOKEN)


def bits(a: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float64)).view(np.int64)


def check_table(table: pa.Table, result: Result) -> None:
    """`point, time, value` rows equal the direct answer's series, in order, NaN for NaN."""
    items = [series_item(s) for s in result.series]
    points = table.column("point").to_pylist()
    assert points == [name for name, ts, _ in items for _ in ts]
    want_ts = np.concatenate([ts for _, ts, _ in items])
    want_vs = np.concatenate([vs for _, _, vs in items])
    assert np.array_equal(table.column("time").cast(pa.int64()).to_numpy(), want_ts)
    assert np.array_equal(bits(table.column("value").to_numpy()), bits(want_vs))
    assert table.schema.field("time").type == pa.timestamp("ms", tz="UTC")


def check_metadata(metadata: dict[bytes, bytes], result: Result) -> None:
    meta = json.loads(metadata[b"acechart:metadata"])
    assert meta == timeseries_metadata(result.query, result.total_samples)
    listed = json.loads(metadata[b"acechart:series"])
    assert listed == [{"name": s.name, "rows": len(s)} for s in result.series]


async def index_of(stack: Stack, job_id: str) -> dict[str, Any]:
    index: dict[str, Any] = json.loads(await stack.store.get(export.metadata_key(job_id)))
    return index


async def get(client: Client, url: str, **headers: str) -> tuple[Any, bytes]:
    resp = await client.get(url, headers={**OWNER, **headers})
    assert resp.status in (200, 206), await resp.text()
    return resp, await resp.read()


async def test_a_result_stored_as_arrow(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    stack = await stacks.open()
    client = await client_for(stack, aiohttp_client)
    job_id = await submit_and_finish(client, stack, n=4, format="arrow")
    result = await direct(stack, job_id)
    assert result.total_samples > 1000
    url = f"/api/jobs/{job_id}/result"
    resp, data = await get(client, url)
    assert resp.content_type == ARROW and resp.headers["Accept-Ranges"] == "bytes"
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{job_id}.arrows"'

    reader = pa.ipc.open_stream(data)
    batches = list(reader)
    assert [b.num_rows for b in batches] == [len(s) for s in result.series]
    check_metadata(reader.schema.metadata, result)
    whole = pa.ipc.open_stream(_core.encode_arrow(*whole_args(result))).read_all()
    assert reader.schema.equals(whole.schema, check_metadata=True)
    table = pa.Table.from_batches(batches, reader.schema)
    check_table(table, result)
    df = pl.read_ipc_stream(io.BytesIO(data))
    assert df["point"].cast(pl.Utf8).to_list() == table.column("point").to_pylist()
    assert np.array_equal(bits(df["value"].to_numpy()), bits(table.column("value")))

    # The index gives each series' part: the head, one part and the end are its stream.
    index = await index_of(stack, job_id)
    assert index["format"] == "arrow" and index["layout"] == "series"
    assert index["key"].endswith("/data.arrow") and index["contentType"] == ARROW
    entries = index["series"]
    head = data[: entries[0]["offset"]]
    second = entries[1]
    _, part = await get(
        client, url, Range=f"bytes={second['offset']}-{second['offset'] + second['length'] - 1}"
    )
    alone = pa.ipc.open_stream(head + part + ARROW_EOS).read_all()
    assert alone.column("point").to_pylist() == [second["name"]] * second["samples"]
    assert data.endswith(ARROW_EOS) and len(data) == index["sizeBytes"]

    # To the other formats, from the blocks.
    _, as_json = await get(client, url + "?format=json")
    assert as_json == encode_whole(result, "json")
    _, as_csv = await get(client, url, Accept="text/csv")
    assert as_csv == encode_whole(result, "csv")
    resp, as_parquet = await get(client, url + "?format=parquet")
    assert resp.content_type == PARQUET and resp.headers["Accept-Ranges"] == "bytes"
    check_table(pq.read_table(io.BytesIO(as_parquet)), result)


def whole_args(result: Result) -> tuple[dict[str, Any], list[Any]]:
    meta = timeseries_metadata(result.query, result.total_samples)
    return meta, [series_item(s) for s in result.series]


async def test_a_result_stored_as_parquet(
    stacks: StackFactory, aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(export, "PARQUET_ROW_GROUP_ROWS", 1000)
    stack = await stacks.open()
    client = await client_for(stack, aiohttp_client)
    job_id = await submit_and_finish(client, stack, n=3, days=10, cadence_s=300, format="parquet")
    result = await direct(stack, job_id)
    lengths = [len(s) for s in result.series]
    assert max(lengths) > 1000  # so some series take more than one row group
    url = f"/api/jobs/{job_id}/result"
    resp, data = await get(client, url)
    assert resp.content_type == PARQUET
    assert resp.headers["Content-Disposition"] == f'attachment; filename="{job_id}.parquet"'
    assert data[:4] == data[-4:] == b"PAR1"

    file = pq.ParquetFile(io.BytesIO(data))
    groups = [file.metadata.row_group(i).num_rows for i in range(file.metadata.num_row_groups)]
    assert groups == [min(1000, n - k) for n in lengths for k in range(0, max(n, 1), 1000)]
    table = file.read()
    check_table(table, result)
    check_metadata(table.schema.metadata, result)
    assert file.metadata.row_group(0).column(0).compression == "ZSTD"
    df = pl.read_parquet(io.BytesIO(data))
    assert df.columns == ["point", "time", "value"] and df.height == result.total_samples
    assert df["point"].to_list() == table.column("point").to_pylist()
    assert df.schema["time"] == pl.Datetime("ms", "UTC")
    assert np.array_equal(bits(df["value"].to_numpy()), bits(table.column("value")))
    meta = pl.read_parquet_metadata(io.BytesIO(data))
    assert json.loads(meta["acechart:metadata"])["totalSamples"] == result.total_samples

    # The index: each series' row groups lie where it says, the first after the magic.
    index = await index_of(stack, job_id)
    assert index["format"] == "parquet" and index["contentType"] == PARQUET
    entries = index["series"]
    assert entries[0]["offset"] == 0
    assert all(a["offset"] + a["length"] == b["offset"] for a, b in itertools.pairwise(entries))
    column = file.metadata.row_group(0).column(0)
    assert 4 <= (column.dictionary_page_offset or column.data_page_offset) < entries[0]["length"]

    # Converted: to JSON and to Arrow, from the blocks.
    _, as_json = await get(client, url + "?format=json")
    assert as_json == encode_whole(result, "json")
    resp, as_arrow = await get(client, url, Accept=ARROW)
    assert resp.content_type == ARROW
    check_table(pa.ipc.open_stream(as_arrow).read_all(), result)


async def test_conversions_from_json_equal_the_stored_documents(
    stacks: StackFactory, aiohttp_client: ClientFactory
) -> None:
    stack = await stacks.open()
    client = await client_for(stack, aiohttp_client)
    json_job = await submit_and_finish(client, stack, format="json")
    arrow_job = await submit_and_finish(client, stack, format="arrow")
    parquet_job = await submit_and_finish(client, stack, format="parquet")
    result = await direct(stack, json_job)

    _, stored_arrow = await get(client, f"/api/jobs/{arrow_job}/result")
    resp, converted = await get(client, f"/api/jobs/{json_job}/result?format=arrow")
    assert resp.content_type == ARROW and resp.headers["Accept-Ranges"] == "bytes"
    assert converted == stored_arrow  # the same pieces, from the same arrays
    _, stored_parquet = await get(client, f"/api/jobs/{parquet_job}/result")
    _, converted = await get(client, f"/api/jobs/{json_job}/result", Accept=PARQUET)
    assert converted == stored_parquet
    check_table(pq.read_table(io.BytesIO(converted)), result)
    # Back: Arrow and Parquet results to MessagePack columns.
    for job_id in (arrow_job, parquet_job):
        url = f"/api/jobs/{job_id}/result?format=msgpack&layout=columns"
        assert (await get(client, url))[1] == encode_whole(result, "msgpack", "columns")
    # `layout=rows` with Arrow is its own layout, `series`
    resp, data = await get(client, f"/api/jobs/{json_job}/result?format=arrow&layout=rows")
    assert data == stored_arrow


async def test_refusals_name_the_parameter(
    stacks: StackFactory, aiohttp_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = await stacks.open()
    client = await client_for(stack, aiohttp_client)
    refusals: list[tuple[dict[str, Any], str, str]] = [
        ({"format": "arrow", "layout": "wide"}, "layout", "series by series"),
        ({"format": "parquet", "layout": "columns"}, "layout", "MessagePack"),
        ({"format": "feather"}, "format", "parquet"),
    ]
    for extra, parameter, words in refusals:
        resp = await client.post("/api/jobs", json=post_body(stack, **extra), headers=OWNER)
        body = await resp.json()
        assert resp.status == 400 and body["parameter"] == parameter, body
        assert words in body["message"]

    job_id = await submit_and_finish(client, stack, format="json")
    url = f"/api/jobs/{job_id}/result"
    resp = await client.get(url + "?format=arrow&layout=wide", headers=OWNER)
    assert resp.status == 400 and (await resp.json())["parameter"] == "layout"

    monkeypatch.setattr("acechart.wire.parquet_available", lambda: False)
    resp = await client.post("/api/jobs", json=post_body(stack, format="parquet"), headers=OWNER)
    body = await resp.json()
    assert resp.status == 400 and body["parameter"] == "format"
    assert "pip install 'acechart[arrow]'" in body["message"]
    resp = await client.get(url + "?format=parquet", headers=OWNER)
    assert resp.status == 400 and "acechart[arrow]" in (await resp.json())["message"]


def test_a_parquet_part_is_what_the_writer_put_out() -> None:
    """Pieces alone: head (nothing) + parts + tail is one file, empty series included."""
    pieces = export._ParquetPieces()
    series = [
        ("a", np.arange(3, dtype=np.int64), np.array([1.0, math.nan, 3.0])),
        ("empty", np.zeros(0, np.int64), np.zeros(0)),
        ("b", np.arange(2, dtype=np.int64) + 10, np.array([-0.0, 2.5])),
    ]
    try:
        parts = [pieces.part(item, i) for i, item in enumerate(series)]
        listing = [(n, len(t)) for n, t, _ in series]
        data = pieces.head({}, listing) + b"".join(parts) + pieces.tail({"m": 1}, listing)
    finally:
        pieces.close()
    assert parts[0][:4] == b"PAR1"
    table = pq.read_table(io.BytesIO(data))
    assert table.column("point").to_pylist() == ["a"] * 3 + ["b"] * 2
    assert np.array_equal(bits(table.column("value")), bits([1.0, math.nan, 3.0, -0.0, 2.5]))
    assert json.loads(table.schema.metadata[b"acechart:series"])[1] == {"name": "empty", "rows": 0}
    assert pq.ParquetFile(io.BytesIO(data)).metadata.num_row_groups == 3
