"""A large answer sent as it is encoded: chunked, piece by piece, compressed on the way.

A body of millions of samples would otherwise exist whole in memory (and a
compressed copy beside it) before its first byte leaves. Streamed, at most one
piece is held: it is encoded (and compressed) in a worker thread, written, and
dropped before the next is made; the writer waits while the client is slower
than the encoder (aiohttp drains the transport), so memory follows the piece,
not the answer.

What a streamed response cannot have: a `Content-Length` (it is chunked) and
an `ETag` (the tag would hash bytes not yet made), so `If-None-Match` does not
apply to it and it is never kept in the edge cache. Small answers keep both.

A failure after the headers went out cannot become an error status any more,
and ending the chunked body normally would hand the client a truncated body
that parses (a JSON prefix does not, but a MessagePack map of fewer series or a
CSV of fewer rows does). So the connection is aborted instead: no terminating
chunk is sent, and every HTTP client reports the body as incomplete.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Iterable, Mapping
from typing import Protocol

import brotli  # type: ignore[import-untyped]
import zstandard
from aiohttp import web

from acechart.server.headers import choose_coding
from acechart.wire import Piece

__all__ = ["send_stream"]

logger = logging.getLogger(__name__)


class _Packer(Protocol):
    def compress(self, data: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class _Brotli:
    def __init__(self) -> None:
        self._packer = brotli.Compressor(quality=5)

    def compress(self, data: bytes) -> bytes:
        out: bytes = self._packer.process(data)
        return out

    def flush(self) -> bytes:
        out: bytes = self._packer.finish()
        return out


class _Zstd:
    def __init__(self) -> None:
        self._packer = zstandard.ZstdCompressor(level=3).compressobj()

    def compress(self, data: bytes) -> bytes:
        return self._packer.compress(data)

    def flush(self) -> bytes:
        return self._packer.flush()


def _packer(coding: str) -> _Packer:
    """A streaming compressor at the levels of `server.compress` (one per response)."""
    if coding == "gzip":
        return zlib.compressobj(6, zlib.DEFLATED, 31)
    if coding == "br":
        return _Brotli()
    if coding == "zstd":
        return _Zstd()
    raise ValueError(f"unknown content coding {coding!r}")


def _make(piece: Piece, packer: _Packer | None) -> bytes:
    data = piece()
    return packer.compress(data) if packer is not None else data


async def send_stream(
    request: web.Request, headers: Mapping[str, str], pieces: Iterable[Piece]
) -> web.StreamResponse:
    """Send `pieces` as one chunked 200 with `headers`, compressed by `Accept-Encoding`.

    Each piece is made in a worker thread and written before the next is made.
    When making or sending one fails, the connection is aborted (see the module
    docstring) and the error logged; the response is returned as it stands.
    """
    coding = choose_coding(request.headers.get("Accept-Encoding", ""))
    packer = _packer(coding) if coding is not None else None
    response = web.StreamResponse(headers=headers)
    if coding is not None:
        response.headers["Content-Encoding"] = coding
    response.enable_chunked_encoding()
    await response.prepare(request)
    try:
        for piece in pieces:
            data = await asyncio.to_thread(_make, piece, packer)
            del piece  # its series goes as soon as it is encoded
            if data:
                await response.write(data)
            del data
        if packer is not None:
            await response.write(packer.flush())
        await response.write_eof()
    except ConnectionError as exc:
        logger.info("client left a streamed answer after %d bytes: %s", response.body_length, exc)
        transport = request.transport
        if transport is not None:
            transport.abort()
    except Exception as exc:
        logger.error(
            "streamed answer to %s %s broken off after %d bytes: %s",
            request.method,
            request.path,
            response.body_length,
            exc,
        )
        transport = request.transport
        if transport is not None:
            transport.abort()
    return response
