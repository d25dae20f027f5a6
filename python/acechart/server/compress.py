"""HTTP content codings: gzip, br and zstd at levels tuned for responses made per request.

Each level trades a little ratio for speed (zstd 3, brotli 5, gzip 6), since a
body is compressed at most once per coding and then kept beside it in the
edge cache. Large bodies are compressed in a worker thread: zlib, brotli and
zstandard all release the GIL while they work.
"""

from __future__ import annotations

import asyncio
import zlib

import brotli  # type: ignore[import-untyped]
import zstandard

__all__ = ["compress", "compress_async"]

_THREAD_MIN_BYTES = 128 * 1024


def compress(body: bytes, coding: str) -> bytes:
    if coding == "zstd":
        # A fresh compressor per call: ZstdCompressor is not safe to share across threads.
        return zstandard.ZstdCompressor(level=3).compress(body)
    if coding == "br":
        data: bytes = brotli.compress(body, quality=5)
        return data
    if coding == "gzip":
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        return packer.compress(body) + packer.flush()
    raise ValueError(f"unknown content coding {coding!r}")


async def compress_async(body: bytes, coding: str) -> bytes:
    if len(body) < _THREAD_MIN_BYTES:
        return compress(body, coding)
    return await asyncio.to_thread(compress, body, coding)
