"""`CachedResponse`: an edge-cached answer written as one pre-serialised block and its body.

On a cached answer, aiohttp's generic response path (a header multidict filled
per request, `_prepare_headers`, the serialisation of a dozen headers, a
write) cost as much as everything else the hit does. An answer from one entry
repeats the same headers but for a few that change per second (`Cache-Control`'s
max-age, `Age`, `Date`) or per request (`X-Request-Id`, `X-Processing-Time`):
so the entry keeps its header block serialised, at most one per cache status,
source and content coding (remade when the second changes), and a response is
the status line, that block, the per-request headers and the body in one write.

Only a plain keep-alive HTTP/1.1 GET takes that path. Anything else (HEAD,
HTTP/1.0, `Connection: close`, a header value holding CR or LF, an application
with `on_response_prepare` handlers, cookies) is answered by aiohttp's own path
with the very same headers; `tests/test_prepared_response.py` compares the two
paths on the wire, header for header and body byte for byte.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from email.utils import formatdate

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11
from aiohttp.web_request import BaseRequest

__all__ = ["STATUS_LINE", "CachedResponse", "date_and_server", "serialise_headers"]

STATUS_LINE = b"HTTP/1.1 200 OK\r\n"
_SERVER_LINE = f"Server: {SERVER_SOFTWARE}\r\n\r\n".encode()

_second = -1
_date_server = b""


def date_and_server() -> bytes:
    """`Date` (per second, as aiohttp makes it) and `Server`, then the blank line."""
    global _second, _date_server
    now = int(time.time())
    if now != _second:
        _second = now
        _date_server = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n" + _SERVER_LINE
    return _date_server


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
"""What aiohttp refuses in a header but CR and LF (those are counted): control
characters but the tab."""


def serialise_headers(headers: Iterable[tuple[str, str]]) -> bytes | None:
    """`Name: value` lines of `headers`, as aiohttp writes them; None when a name or value
    holds a character aiohttp refuses there (a control character: CR, LF, ...), so such a
    response takes aiohttp's path and is refused the same way. Each line ends in one CR
    LF, so any other CR or LF shows in the counts."""
    lines = [f"{name}: {value}\r\n" for name, value in headers]
    text = "".join(lines)
    if text.count("\r") != len(lines) or text.count("\n") != len(lines) or _CONTROL.search(text):
        return None
    return text.encode()


class CachedResponse(web.StreamResponse):
    """A 200 from an edge entry: `block` is its serialised headers but the per-request ones
    (None: they cannot be serialised), `fallback()` the same as a dict for aiohttp's path.
    Then come `X-Processing-Time`, `X-Request-Id` and headers set on the response after
    it is made (CORS).

    A `StreamResponse` rather than a `Response`: what makes a `Response` (its body
    setter, its headers) is made only when aiohttp's path is taken, by a `Response`
    this one hands the request to.
    """

    def __init__(
        self,
        body: bytes,
        block: bytes | None,
        fallback: Callable[[], dict[str, str]],
        *,
        processing: str,
        plain: bool,
    ) -> None:
        super().__init__()
        self.request_id = ""
        """`X-Request-Id`, set by the front middleware (a checked id: letters, digits, `._:-`)."""
        self.processing = processing
        """`X-Processing-Time`."""
        self._cached_body = body
        self._block = block
        self._fallback = fallback
        self._plain = plain
        """False when the application has `on_response_prepare` handlers to run."""
        self._inner: web.Response | None = None

    async def prepare(self, request: BaseRequest) -> AbstractStreamWriter | None:
        if self._eof_sent:
            return None
        if self._payload_writer is not None:
            return self._payload_writer
        head = self._head(request)
        if head is None:
            headers = self._fallback()
            headers["X-Processing-Time"] = self.processing
            if self.request_id:
                headers["X-Request-Id"] = self.request_id
            headers.update(self._headers)
            inner = self._inner = web.Response(body=self._cached_body, headers=headers)
            writer = await inner.prepare(request)
            self._keep_alive = inner.keep_alive
            self._payload_writer = writer
            return writer
        writer = request.writer
        self._keep_alive = True
        await writer.write_eof(b"".join((STATUS_LINE, head, date_and_server(), self._cached_body)))
        self._eof_sent = True
        self._body_length = writer.output_size
        return writer

    async def write_eof(self, data: bytes = b"") -> None:
        inner = self._inner
        if inner is not None and not self._eof_sent:
            await inner.write_eof(data)
            self._eof_sent = True
            self._body_length = inner.body_length
            self._payload_writer = None

    def _head(self, request: BaseRequest) -> bytes | None:
        """The headers to write after the status line, or None for aiohttp's path."""
        block = self._block
        if (
            block is None
            or not self._plain
            or request.method != "GET"
            or request.version != HttpVersion11
            or not request.keep_alive
            or self._keep_alive is not None
            or self._cookies
            or self._compression
            or self._chunked
        ):
            return None
        own = f"X-Processing-Time: {self.processing}\r\nX-Request-Id: {self.request_id}\r\n"
        if not self._headers:
            return block + own.encode()
        extra = serialise_headers(self._headers.items())
        return None if extra is None else block + own.encode() + extra
