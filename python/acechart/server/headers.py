"""Reading and matching the HTTP headers every route shares: token, ETag, Range, coding.

The format side of `Accept` is the wire vocabulary's (`acechart.wire.negotiate`);
what is left here is HTTP proper: who is calling, whether the client's copy is
current, which bytes it wants, and how to compress them.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence

from aiohttp import web

from acechart.errors import BadRequest, Unauthorized
from acechart.wire import parse_qualities

__all__ = [
    "CODINGS",
    "choose_coding",
    "client_address",
    "etag_matches",
    "parse_range",
    "token_from",
    "token_of",
    "trusted_networks",
]

#: Content codings we produce, best first when a client rates several equally.
CODINGS: tuple[str, ...] = ("zstd", "br", "gzip")

#: A token is printable ASCII without spaces (RFC 6750's b64token and every JWT fit).
_TOKEN = re.compile(r"[\x21-\x7e]+")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


_BYTE_RANGE = re.compile(r"\s*bytes=([0-9]*)-([0-9]*)\s*", re.IGNORECASE | re.ASCII)


def token_from(request: web.Request) -> str:
    """The caller's token: `X-ACE-Token`, else `Authorization: Bearer`; 401 without one.

    A token that is not printable ASCII (bytes that are not UTF-8 arrive as lone
    surrogates) is a 400 naming the header; the message never quotes it.
    """
    headers = request.headers
    return token_of(headers.get("X-ACE-Token", ""), headers.get("Authorization", ""))


def token_of(ace_token: str, authorization: str) -> str:
    """`token_from` over the two headers' values (empty when absent)."""
    token = ace_token.strip()
    if token:
        return _checked(token, "X-ACE-Token")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return _checked(value.strip(), "Authorization")
    raise Unauthorized("missing token: send X-ACE-Token or Authorization: Bearer <token>")


def _checked(token: str, header: str) -> str:
    if not _TOKEN.fullmatch(token):
        raise BadRequest(
            f"the token in {header} must be printable ASCII without spaces", parameter=header
        )
    return token


@functools.lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """The proxy addresses and networks of `server_trusted_proxies`, parsed once."""
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def client_address(request: web.Request, proxies: Sequence[IPNetwork] = ()) -> str:
    """The address of the client behind a request, for limits counted per client.

    The peer's address, unless the peer is one of `proxies`: then the last
    `X-Forwarded-For` hop that is not a trusted proxy (each proxy appends the
    address it saw, so only hops a trusted proxy added are believed). From any
    other peer the header is ignored: a client could claim a new address each
    time.
    """
    remote = request.remote or "unknown"
    if not proxies or not _within(remote, proxies):
        return remote
    hops = [
        hop.strip()
        for value in request.headers.getall("X-Forwarded-For", [])
        for hop in value.split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        try:
            address = ipaddress.ip_address(hop)
        except ValueError:
            return remote  # a malformed hop: the proxy's own address, shared by all
        if not any(address in net for net in proxies):
            return str(address)
    return remote


def _within(text: str, networks: Sequence[IPNetwork]) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(address in net for net in networks)


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

    Only RFC 9110's grammar is read: ASCII digits, no sign, no inner spaces (Python's
    `int` would take `+5`, `1_0`, ` 5 ` and other scripts' digits). Several ranges,
    other units and malformed values are ignored (the whole object is sent), as RFC
    9110 allows.
    """
    match = _BYTE_RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.groups()
    if not first:
        if not last:
            return None
        suffix = int(last)
        if suffix <= 0 or size == 0:
            return "unsatisfiable"  # an empty object has no last bytes (RFC 9110 14.1.1)
        return max(0, size - suffix), size
    start = int(first)
    end = int(last) + 1 if last else size
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
