"""`LaneHandler`: the hit lane on the connection, ahead of aiohttp's parser.

For a repeated cached GET, aiohttp's own request path (the parsed message, the
`Request`, a task per request, the router, the middleware, the response
object) costs more than everything acechart does for it: a bare aiohttp
handler returning bytes from a dict is the ceiling `benches/bench_http.py`
measures, and answering in front of all that is the one way past it. So the
connection reads each chunk the socket delivers before aiohttp does, and a
request the lane answers whole (`Lane.answer_bytes`) is answered there, in
one write for the chunk; aiohttp gets the rest of the chunk from the first
request the lane does not answer, so answers keep their order.

It does so only when that cannot change what aiohttp would have seen:

- **framing**: every byte the connection has received so far was whole
  requests without a body (each chunk ends with its last header block; no
  `Content-Length`, `Transfer-Encoding` or `Upgrade` header, no `CONNECT`).
  Once a chunk is anything else, the connection is aiohttp's for good: its
  parser may be inside a message, and reading the rest as requests would be a
  request smuggled past it. The header names are looked for after any CR or LF
  in the chunk, whatever the line endings, so a doubt always goes to aiohttp.
- **order and pressure**: aiohttp's handler is idle (waiting for a message,
  none queued, none in progress), the transport is not paused for writing,
  and the connection is not closing; the answers to one read stop past 1 MiB
  (the rest of it goes to aiohttp, which waits on the transport).
- **the request**: a GET of printable ASCII in HTTP/1.1 whose header block is
  well formed (CR LF lines, token names, no control characters in values, each
  header once, `Host` present, no `Sec-WebSocket-Key1`: what aiohttp's parser
  would refuse with a 400), within the connection's line, field and
  header-count limits; the lane then applies its own checks
  (`Lane.answer_bytes`).

An answer restarts aiohttp's keep-alive timer as its own answers do. The
handler depends on aiohttp's `RequestHandler` internals (`SLOTS`); if a
version lacks any of them the lane stays off, with a warning, and aiohttp
answers everything.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from aiohttp.web_protocol import RequestHandler

from acechart.server.lane import Lane
from acechart.server.runner import JsonErrorHandler

__all__ = ["SLOTS", "LaneHandler", "available", "requests_in"]

logger = logging.getLogger(__name__)

SLOTS = (
    "_waiter",
    "_messages",
    "_request_in_progress",
    "_payload_parser",
    "_upgraded",
    "_close",
    "_force_close",
    "_paused",
    "_keepalive",
    "_keepalive_handle",
    "_keepalive_timeout",
    "_next_keepalive_close_time",
    "_request_count",
    "_manager",
)
"""The `RequestHandler` attributes the lane reads to know aiohttp's state."""


def available() -> bool:
    """Whether this aiohttp's `RequestHandler` has every attribute the lane relies on."""
    have = {name for cls in RequestHandler.__mro__ for name in getattr(cls, "__slots__", ())}
    missing = [name for name in SLOTS if name not in have]
    if missing:
        logger.warning(
            "the connection hit lane is off: aiohttp's RequestHandler lacks %s",
            ", ".join(missing),
        )
    return not missing and hasattr(RequestHandler, "_process_keepalive")


_END = b"\r\n\r\n"
_BODY_OR_TUNNEL = (b"\ncontent-length", b"\ntransfer-encoding", b"\nupgrade")
"""Header names (at a line's start, whatever ends the line before) that frame a body or
switch protocols."""

_BURST_BYTES = 1 << 20
"""Answers written for one read, at most (about): the rest of the read goes to aiohttp,
which writes with the transport's back-pressure. A client pipelining requests it never
reads the answers of buffers at most this much here."""

_GET = re.compile(
    rb"GET /[\x21-\x7e]* HTTP/1\.1"
    rb"(?:\r\n[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*)*"
)
"""A header block the lane reads: a GET in origin form, HTTP/1.1, token names, values of
visible characters, spaces, tabs and obs-text (what llhttp takes)."""


def requests_in(data: bytes) -> list[bytes] | None:
    """The header blocks of `data` when it is whole requests without a body (see the
    module's framing rule), else None."""
    if not data.endswith(_END):
        return None
    # Any CR or LF may end a line for some parser: a name after either one counts.
    lines = data.lower().replace(b"\r", b"\n")
    for word in _BODY_OR_TUNNEL:
        if word in lines:
            return None
    heads = data[:-4].split(_END)
    for head in heads:
        if not head or head.startswith(b"CONNECT "):
            return None  # CR LF before a request line (aiohttp skips it), or a tunnel
    return heads


class LaneHandler(JsonErrorHandler):
    """A connection answering the hit lane's requests itself (see the module docstring)."""

    __slots__ = ("_framed", "_lane", "_limit")

    def __init__(self, manager: Any, *, lane: Lane, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._lane = lane
        self._framed = True
        """Every byte so far was whole requests without a body."""
        self._limit = min(self.max_line_size, self.max_field_size)
        """A header block no longer than this has no line past either limit."""

    def data_received(self, data: bytes) -> None:
        if self._framed:
            heads = requests_in(data)
            if heads is None:
                self._framed = False
            elif self._lane.connection and self._idle():
                data = self._answer(data, heads)
                if not data:
                    return
        super().data_received(data)

    def _idle(self) -> bool:
        """Whether aiohttp waits for a request with nothing queued, in progress or pending
        (a write pressed back, an upgrade, a close)."""
        waiter = self._waiter
        return (
            waiter is not None
            and not waiter.done()
            and not self._messages
            and not self._request_in_progress
            and not self._paused
            and self._payload_parser is None
            and not self._upgraded
            and not self._close
            and not self._force_close
            and self._keepalive
            and self.transport is not None
        )

    def _answer(self, data: bytes, heads: list[bytes]) -> bytes:
        """Answer the leading requests of `data` the lane takes; the rest of `data`."""
        answers: list[bytes] = []
        used = written = 0
        for head in heads:
            if written > _BURST_BYTES:
                break
            started = time.perf_counter()
            try:
                answer = self._one(head, started)
            except Exception:
                logger.exception("the connection hit lane failed; aiohttp answers instead")
                answer = None
            if answer is None:
                break
            answers.append(answer)
            used += len(head) + 4
            written += len(answer)
        if not answers:
            return data
        assert self.transport is not None
        self.transport.write(answers[0] if len(answers) == 1 else b"".join(answers))
        self._request_count += len(answers)
        manager = self._manager
        if manager is not None:
            manager.requests_count += len(answers)
        # aiohttp's keep-alive timer, as it restarts it after each answer of its own.
        loop = self._loop
        close_time = loop.time() + self._keepalive_timeout
        self._next_keepalive_close_time = close_time
        if self._keepalive_handle is None:
            self._keepalive_handle = loop.call_at(close_time, self._process_keepalive)
        return data[used:]

    def _one(self, head: bytes, started: float) -> bytes | None:
        """The lane's answer to one header block, or None."""
        if len(head) > self._limit or _GET.fullmatch(head) is None:
            return None
        lines = head.split(b"\r\n")
        if len(lines) + 1 > self.max_headers:
            return None  # aiohttp's pure-Python parser counts the request line and the end
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            key = name.decode("ascii").lower()
            if key in headers:
                return None  # twice: which one counts is aiohttp's to say
            headers[key] = value.strip(b" \t").decode("utf-8", "surrogateescape")
        connection = headers.get("connection")
        if connection is not None and connection.lower() != "keep-alive":
            return None
        if "host" not in headers or "sec-websocket-key1" in headers:
            return None  # aiohttp's parser refuses both with a 400
        return self._lane.answer_bytes(lines[0][4:-9].decode("ascii"), headers, started)
