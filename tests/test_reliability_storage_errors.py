"""Storage errors name their object key and file path in the log, never in a response.

A 503 body used to carry `get 'timeseries/<site>/<hash>/<month>.blk': [Errno ..] ..:
'/data/objects/...'`: the layout of the store and the server's paths. Now the body
says which operation failed and why in words that hold neither; the log line keeps
both.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import pytest

from acechart.storage import LocalObjectStore
from acechart.storage.objects import StorageError
from acechart.storage.s3 import S3ObjectStore
from tests.conftest import NOW_MS, Sim
from tests.server_helpers import DAY, ClientFactory, query, start_service
from tests.storage_fixtures import MotoS3


async def test_a_failing_block_read_answers_503_without_key_or_path(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path)
    points = svc.points(1)
    first = await svc.get("/api/timeseries", query(points, NOW_MS - 20 * DAY, NOW_MS - 19 * DAY))
    assert first.status == 200
    objects = tmp_path / "service" / "objects"
    blocks = sorted(objects.rglob("*.blk"))
    assert blocks
    for block in blocks:  # an unreadable file: a symlink loop, OSError ELOOP
        block.unlink()
        os.symlink(block.name, block)
    caplog.set_level(logging.WARNING)
    resp = await svc.get("/api/timeseries", query(points, NOW_MS - 20 * DAY, NOW_MS - 18 * DAY))
    assert resp.status == 503
    body = await resp.json()
    text = json.dumps(body)
    assert body["error"] == "storage_unavailable"
    assert "timeseries/" not in text and ".blk" not in text and str(tmp_path) not in text
    assert "symbolic links" in body["message"]  # the reason, without the file name
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "timeseries/" in logged and ".blk" in logged  # the key is in the log


async def test_local_store_errors_keep_paths_out_of_the_message(tmp_path: Path) -> None:
    async with LocalObjectStore(tmp_path / "objects") as store:
        await store.put("a/b", b"x")
        target = tmp_path / "objects" / "a" / "b"
        target.unlink()
        os.symlink("b", target)
        with pytest.raises(StorageError) as caught:
            await store.get("a/b")
    exc = caught.value
    assert "a/b" in str(exc) and str(tmp_path) in str(exc)  # for the log
    assert "a/b" not in exc.message and str(tmp_path) not in exc.message
    assert exc.to_body()["message"] == exc.message


async def test_s3_errors_keep_keys_and_urls_out_of_the_message(moto_s3: MotoS3) -> None:
    missing = S3ObjectStore(
        moto_s3.endpoint_url,
        "no-such-bucket",
        access_key="k",
        secret_key="s",
        prefix="secret-prefix/",
        session=moto_s3.session,
    )
    async with missing:
        with pytest.raises(StorageError) as caught:
            await missing.get("timeseries/site/abc/2024-01.blk")
    exc = caught.value
    assert "2024-01.blk" in str(exc)
    assert "2024-01.blk" not in exc.message and "NoSuchBucket" in exc.message
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = S3ObjectStore(
        f"http://127.0.0.1:{port}",
        "bucket-name",
        access_key="k",
        secret_key="s",
        prefix="secret-prefix/",
        max_attempts=1,
        connect_timeout_s=2,
        session=moto_s3.session,
    )
    async with down:
        with pytest.raises(StorageError) as caught:
            await down.get("timeseries/site/abc/2024-01.blk")
    exc = caught.value
    for secret in ("2024-01.blk", "secret-prefix", "bucket-name", str(port)):
        assert secret not in exc.message, exc.message
