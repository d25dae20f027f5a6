"""Reading the request headers every HTTP route shares: the token and Accept qualities.

Used by the service's routes and by the job routes alike, so both accept tokens
and negotiate formats by the same rules.
"""

from __future__ import annotations

from aiohttp import web

from acechart.errors import Unauthorized

__all__ = ["parse_qualities", "token_from"]


def token_from(request: web.Request) -> str:
    """The caller's token: `X-ACE-Token`, else `Authorization: Bearer`; 401 without one."""
    token = request.headers.get("X-ACE-Token", "").strip()
    if token:
        return token
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    raise Unauthorized("missing token: send X-ACE-Token or Authorization: Bearer <token>")


def parse_qualities(header: str) -> dict[str, float]:
    """`a/b;q=0.5, c/d` -> {"a/b": 0.5, "c/d": 1.0}; malformed q values count as 0."""
    out: dict[str, float] = {}
    for part in header.split(","):
        item, *params = (p.strip() for p in part.split(";"))
        if not item:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        key = item.lower()
        out[key] = max(q, out.get(key, 0.0))
    return out
