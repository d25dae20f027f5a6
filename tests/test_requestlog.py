"""The request log's line handler and its direct path for request lines.

`LineHandler` writes the lines of one event-loop turn with one write; a request
line skips `logging`'s record when every handler it would reach is ours, and
must then be the very line `logging` would have written.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acechart.server.requestlog import (
    JsonFormatter,
    LineHandler,
    configure_logging,
    line_fields,
    request_line,
)
from tests.conftest import SITE, Sim
from tests.server_helpers import ClientFactory, start_service


class CountingStream(io.StringIO):
    """A text stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, s: str) -> int:
        self.writes += 1
        return super().write(s)


def _record(message: str, level: int = logging.INFO) -> logging.LogRecord:
    return logging.LogRecord("t", level, __file__, 1, message, None, None)


async def test_info_lines_are_written_together_after_the_delay_in_order() -> None:
    stream = CountingStream()
    handler = LineHandler(stream, delay_s=0.02)
    for i in range(5):
        handler.handle(_record(f"line {i}"))
    await asyncio.sleep(0)
    assert stream.writes == 0  # queued until the delay is over
    await asyncio.sleep(0.1)
    assert stream.writes == 1
    assert stream.getvalue().splitlines() == [f"line {i}" for i in range(5)]
    handler.handle(_record("next batch"))
    await asyncio.sleep(0.1)
    assert stream.writes == 2 and stream.getvalue().endswith("next batch\n")


async def test_a_warning_is_written_at_once_after_the_queued_lines() -> None:
    stream = CountingStream()
    handler = LineHandler(stream, delay_s=10)
    handler.handle(_record("queued"))
    handler.handle(_record("trouble", logging.WARNING))
    assert stream.getvalue().splitlines() == ["queued", "trouble"]


async def test_a_full_queue_is_written_without_waiting() -> None:
    stream = CountingStream()
    handler = LineHandler(stream, delay_s=10, max_lines=3)
    for i in range(7):
        handler.handle(_record(f"line {i}"))
    assert stream.writes == 2 and len(stream.getvalue().splitlines()) == 6
    handler.flush()
    assert len(stream.getvalue().splitlines()) == 7


async def test_no_delay_writes_every_line_at_once() -> None:
    stream = CountingStream()
    handler = LineHandler(stream, delay_s=0)
    handler.handle(_record("a"))
    handler.handle(_record("b"))
    assert stream.writes == 2


def test_off_the_loop_a_line_is_written_at_once() -> None:
    stream = CountingStream()
    handler = LineHandler(stream)
    handler.handle(_record("now"))
    assert stream.getvalue() == "now\n"


async def test_a_thread_s_line_follows_the_lines_queued_before_it() -> None:
    stream = CountingStream()
    handler = LineHandler(stream, delay_s=10)
    handler.handle(_record("first, on the loop"))
    thread = threading.Thread(target=lambda: handler.handle(_record("second, in a thread")))
    thread.start()
    thread.join()
    assert stream.getvalue().splitlines() == ["first, on the loop", "second, in a thread"]


def test_a_failing_stream_drops_its_lines_without_raising() -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("disk full")

    handler = LineHandler(Broken())
    handler.handle(_record("lost"))
    handler.handle(_record("lost too"))


def test_configure_logging_batches_the_root_stream_handlers() -> None:
    root = logging.getLogger()
    stream = io.StringIO()
    plain = logging.StreamHandler(stream)
    plain.setLevel(logging.WARNING)
    root.addHandler(plain)
    try:
        configure_logging("json", flush_s=0.25)
        ours = [h for h in root.handlers if isinstance(h, LineHandler) and h.stream is stream]
        assert plain not in root.handlers and len(ours) == 1
        assert ours[0].level == logging.WARNING and ours[0].delay_s == 0.25
        assert isinstance(ours[0].formatter, JsonFormatter)
    finally:
        for h in [h for h in root.handlers if getattr(h, "stream", None) is stream]:
            root.removeHandler(h)


@pytest.fixture
def root_handlers() -> Iterator[list[logging.Handler]]:
    """Handlers put on the root logger for one test (at INFO), removed after it."""
    root = logging.getLogger()
    added: list[logging.Handler] = []
    old = root.level
    root.setLevel(logging.INFO)
    try:
        yield added
    finally:
        for h in added:
            root.removeHandler(h)
        root.setLevel(old)


def _request_lines(text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("type") == "request"]


async def test_the_direct_request_line_is_the_line_logging_writes(
    aiohttp_client: ClientFactory, sim: Sim, tmp_path: Path, root_handlers: list[logging.Handler]
) -> None:
    svc = await start_service(aiohttp_client, sim, tmp_path)
    params = {
        "site": SITE,
        "points": svc.points(1)[0],
        "start": "2024-12-01T00:00:00Z",
        "end": "2024-12-01T06:00:00Z",
    }
    assert (await svc.get("/api/timeseries", params)).status == 200  # both lines: edge hits
    root = logging.getLogger()
    # Only LineHandlers with the JSON formatter: the line skips logging's record.
    direct = io.StringIO()
    ours = LineHandler(direct, delay_s=0)
    ours.setFormatter(JsonFormatter())
    root_handlers.append(ours)
    root.addHandler(ours)
    # Other handlers are present (pytest's own capture): make the root's list ours alone.
    others = [h for h in root.handlers if h is not ours]
    for h in others:
        root.removeHandler(h)
    try:
        resp = await svc.get("/api/timeseries", params, headers={"X-Request-Id": "direct-1"})
        assert resp.status == 200
        await asyncio.sleep(0)
        # A plain StreamHandler beside it: now every line goes through logging.
        through = io.StringIO()
        plain = logging.StreamHandler(through)
        plain.setFormatter(JsonFormatter())
        root_handlers.append(plain)
        root.addHandler(plain)
        resp = await svc.get("/api/timeseries", params, headers={"X-Request-Id": "logged-1"})
        assert resp.status == 200
        await asyncio.sleep(0)
    finally:
        for h in others:
            root.addHandler(h)
    first = next(x for x in _request_lines(direct.getvalue()) if x["requestId"] == "direct-1")
    second = next(x for x in _request_lines(through.getvalue()) if x["requestId"] == "logged-1")
    assert [x["requestId"] for x in _request_lines(direct.getvalue())] == ["direct-1", "logged-1"]
    for line in (first, second):
        del line["timestamp"], line["requestId"], line["response"]["processingTime"]
    assert first == second
    assert first["response"]["cacheStatus"] == "HIT"
    assert first["logger"] == "acechart.server.requestlog" and first["level"] == "info"
    assert first["request"]["siteId"] == SITE and first["response"]["status"] == 200


_text = st.none() | st.text(max_size=40)
_count = st.none() | st.integers(min_value=0, max_value=2**62)


@settings(max_examples=300, deadline=None)
@given(
    url=st.text(max_size=80),
    fields=st.tuples(_text, _count, _count, _text, _text),
    status=st.integers(100, 599),
    rest=st.tuples(_text, _text, _count, _count, _text),
    stamp=st.integers(0, 4_000_000_000_000),
    request_id=st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True),
    took=st.floats(min_value=0, max_value=1e9, allow_nan=False).map(lambda x: round(x, 2)),
)
def test_a_templated_line_is_the_line_the_formatter_writes(
    url: str,
    fields: tuple[Any, ...],
    status: int,
    rest: tuple[Any, ...],
    stamp: int,
    request_id: str,
    took: float,
) -> None:
    key = ("GET", url, *fields, status, *rest)
    created = stamp / 1000.0
    record = logging.LogRecord("acechart.server.requestlog", logging.INFO, "", 0, "x", None, None)
    record.created = created
    record.fields = line_fields(request_id, took, key)
    expected = JsonFormatter().format(record)
    at = JsonFormatter.timestamp(created)
    assert request_line(at, request_id, took, key) == expected
    # Seen again (its template now cached), with other changing values.
    other = JsonFormatter.timestamp(created + 1.5)
    again = json.loads(request_line(other, request_id + "x", took + 1, key))
    assert again["timestamp"] == other and again["requestId"] == request_id + "x"
    assert again["response"]["processingTime"] == took + 1
    assert again["request"] == json.loads(expected)["request"]


def test_a_value_holding_a_stand_in_is_serialised_whole() -> None:
    key = ("GET", '/x?"\x00t"', None, 1, None, "json", None, 200, "HIT", "EDGE", 5, 1, "cached")
    line = request_line("2025-01-01T00:00:00.000+00:00", "id-1", 0.5, key)
    doc = json.loads(line)
    assert doc["request"]["url"] == '/x?"\x00t"' and doc["requestId"] == "id-1"
    assert doc["timestamp"] == "2025-01-01T00:00:00.000+00:00"


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_the_timestamp_is_the_iso_second_and_its_truncated_milliseconds(created: float) -> None:
    second = int(created)
    expected = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    expected += f".{int((created - second) * 1000):03d}+00:00"
    assert JsonFormatter.timestamp(created) == expected
