"""Tokens never reach the logs or an error body, even in a request the parser refuses.

aiohttp's parser quotes the bytes it chokes on (`Invalid header value char:
b'X-ACE-Token: <token>\\x7f'`), and exception messages may quote header values. These
requests go over a real socket to the service as `acechart serve` serves it (its
runner, its connection handler); everything logged, at every level, is captured and
searched for the token.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from acechart.server.errors import redacted
from acechart.server.front import front_middleware
from acechart.server.keys import METRICS
from acechart.server.metrics import Metrics
from acechart.server.requestlog import JsonFormatter
from tests.conftest import SITE, Sim
from tests.server_helpers import ClientFactory, Service, start_service

SECRET = "tok-Zq8SECRETvalue-91x"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """Every log record of every logger, formatted with tracebacks, as JSON lines."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


@pytest.fixture
async def svc(aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path) -> Service:
    return await start_service(aiohttp_client, sim, tmp_path, server_max_field_bytes=4096)


async def _send(svc: Service, raw: bytes) -> bytes:
    server = svc.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


def _request(header: bytes) -> bytes:
    return (
        b"GET /api/points?site="
        + SITE.encode()
        + b" HTTP/1.1\r\nHost: x\r\n"
        + header
        + b"\r\nConnection: close\r\n\r\n"
    )


MALFORMED = [
    b"X-ACE-Token: " + SECRET.encode() + b"\x7f",
    b"X-ACE-Token: " + SECRET.encode() + b"\x01",
    b"X-ACE-Token: " + SECRET.encode() + b"\x00tail",
    b"Authorization: Bearer " + SECRET.encode() + b"\x7f",
    b"Authorization: Bearer " + SECRET.encode() + b"A" * 8000,  # over the field limit
    b"X-ACE-Token: " + SECRET.encode() + b"\xff\xfe",  # not UTF-8
    b"X-ACE-" + SECRET.encode() + b"\x01: v",  # in a header name
]


@pytest.mark.parametrize("header", MALFORMED)
async def test_malformed_headers_never_put_the_token_in_logs_or_bodies(
    svc: Service, captured: io.StringIO, header: bytes
) -> None:
    answer = await _send(svc, _request(header))
    status = int(answer.split(b" ", 2)[1])
    assert 400 <= status < 500, answer
    _, _, body = answer.partition(b"\r\n\r\n")
    doc = json.loads(body)
    assert doc["error"] and doc["message"]
    assert SECRET.encode() not in answer
    await asyncio.sleep(0.05)  # let the connection's last log lines be written
    logged = captured.getvalue()
    assert SECRET not in logged and SECRET.encode().hex() not in logged
    assert "Zq8SECRET" not in logged


async def test_a_refusal_logs_its_class_and_request_id(svc: Service, captured: io.StringIO) -> None:
    answer = await _send(svc, _request(b"X-ACE-Token: " + SECRET.encode() + b"\x7f"))
    head, _, body = answer.partition(b"\r\n\r\n")
    doc = json.loads(body)
    rid = doc["requestId"]
    assert f"X-Request-Id: {rid}".encode() in head
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    refused = [line for line in lines if rid in line.get("message", "")]
    assert refused and "BadHttpMessage" in refused[0]["message"]
    assert doc["message"].startswith("Malformed HTTP request: Invalid header value char")


async def test_an_unhandled_error_quoting_the_token_is_redacted_in_the_log(
    aiohttp_client: ClientFactory, captured: io.StringIO
) -> None:
    async def boom(request: web.Request) -> web.Response:
        token = request.headers["X-ACE-Token"]
        raise ValueError(f"cannot use {token!r} or {token.encode()!r}")

    metrics = Metrics("test")
    app = web.Application(middlewares=[front_middleware(metrics)])
    app[METRICS] = metrics
    app.router.add_get("/boom", boom)
    client = await aiohttp_client(app)
    resp = await client.get("/boom", headers={"X-ACE-Token": SECRET})
    assert resp.status == 500
    assert SECRET not in await resp.text()
    logged = captured.getvalue()
    assert "ValueError" in logged and "[redacted]" in logged
    assert SECRET not in logged


def test_redaction_covers_quoted_and_escaped_forms() -> None:
    from aiohttp.test_utils import make_mocked_request

    request = make_mocked_request(
        "GET", "/", headers={"Authorization": f"Bearer {SECRET}", "Cookie": "sid=abcdef1234"}
    )
    text = f"{SECRET!r} {SECRET.encode()!r} Bearer {SECRET} sid=abcdef1234"
    out = redacted(text, request)
    assert SECRET not in out and "abcdef1234" not in out
