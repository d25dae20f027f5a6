"""Reading and matching the HTTP headers every route shares: token, ETag, Range, coding.

The format side of `Accept` is the wire vocabulary's (`acechart.wire.negotiate`);
what is left here is HTTP proper: who is calling, whether the client's copy is
current, which bytes it wants, and how to compress them.
"""

from __future__ import annotations

import functools

from aiohttp import web

from acechart.errors import Unauthorized
from acechart.wire import parse_qualities

__all__ = ["CODINGS", "choose_coding", "etag_matches", "parse_range", "token_from"]

#: Content codings we produce, best first when a client rates several equally.
CODINGS: tuple[str, ...] = ("zstd", "br", "gzip")


def token_from(request: web.Request) -> str:
    """The caller's token: `X-ACE-Token`, else `Authorization: Bearer`; 401 without one."""
    token = request.headers.get("X-ACE-Token", "").strip()
    if token:
        return token
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    raise Unauthorized("missing token: send X-ACE-Token or Authorization: Bearer <token>")


def etag_matches(header: str | None, etag: str) -> bool:
    """Weak comparison of `If-None-Match` against an ETag (`*` matches any), as RFC 9110
    asks for `If-None-Match` whether our tag is weak or strong."""
    if not header:
        return False
    ours = etag.removeprefix("W/")
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == ours:
            return True
    return False


def parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One `bytes=` range as [start, end), "unsatisfiable", or None to ignore the header.

    Several ranges, other units and malformed values are ignored (the whole
    object is sent), as RFC 9110 allows.
    """
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:
            suffix = int(last)
            if suffix <= 0:
                return "unsatisfiable"
            return max(0, size - suffix), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size:
        return "unsatisfiable"
    if end <= start:
        return None
    return start, min(end, size)


@functools.lru_cache(maxsize=256)
def choose_coding(accept_encoding: str) -> str | None:
    """The content coding to use, or None for identity.

    Codings the client rates highest win; ties go by `CODINGS` order. `*` stands
    for any coding not named; `q=0` refuses one.
    """
    if not accept_encoding:
        return None
    rated = parse_qualities(accept_encoding)
    wildcard = rated.get("*", 0.0)
    best: tuple[float, int] | None = None
    choice: str | None = None
    for rank, coding in enumerate(CODINGS):
        q = rated.get(coding, wildcard)
        if q <= 0:
            continue
        score = (q, -rank)
        if best is None or score > best:
            best, choice = score, coding
    return choice
