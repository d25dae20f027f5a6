"""Which representation a client gets: format and layout, then the content coding.

Format comes from `Accept` when it names MessagePack (the seed's
`shouldUseBinary`, and it wins over `format=`), else from `format=`, else from
an `Accept` that prefers CSV, else JSON. The choice is made once per request
and becomes part of the edge-cache key, so `Vary: Accept` is truthful.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from acechart.errors import BadRequest
from acechart.httpheaders import parse_qualities

Format = Literal["json", "msgpack", "csv"]
Layout = Literal["rows", "columns"]

FORMAT_NAMES: dict[str, Format] = {
    "json": "json",
    "msgpack": "msgpack",
    "binary": "msgpack",
    "csv": "csv",
}
LAYOUTS: tuple[Layout, ...] = ("rows", "columns")
CONTENT_TYPES: dict[Format, str] = {
    "json": "application/json",
    "msgpack": "application/x-msgpack",
    "csv": "text/csv; charset=utf-8",
}
MSGPACK_MEDIA_TYPES = frozenset(
    {"application/x-msgpack", "application/msgpack", "application/vnd.msgpack"}
)
#: Content codings we produce, best first when a client rates several equally.
CODINGS: tuple[str, ...] = ("zstd", "br", "gzip")


@dataclass(frozen=True)
class Representation:
    format: Format = "json"
    layout: Layout = "rows"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.format]


@functools.lru_cache(maxsize=256)
def _accept_preferences(accept: str) -> tuple[bool, bool]:
    """(names MessagePack, prefers CSV to JSON) of an Accept header; clients repeat theirs."""
    accepted = parse_qualities(accept) if accept else {}
    wants_msgpack = any(accepted.get(t, 0.0) > 0 for t in MSGPACK_MEDIA_TYPES)
    prefers_csv = accepted.get("text/csv", 0.0) > accepted.get("application/json", 0.0)
    return wants_msgpack, prefers_csv


def choose_representation(params: Mapping[str, str], accept: str) -> Representation:
    """Format and layout of one request; `BadRequest` names `format` or `layout`."""
    requested: Format | None = None
    raw_format = params.get("format")
    if raw_format is not None:
        requested = FORMAT_NAMES.get(raw_format.strip().lower())
        if requested is None:
            raise BadRequest(
                f"unknown format {raw_format!r}; use json, msgpack (or binary) or csv",
                parameter="format",
            )
    wants_msgpack, prefers_csv = _accept_preferences(accept)
    fmt: Format
    if wants_msgpack:
        fmt = "msgpack"
    elif requested is not None:
        fmt = requested
    elif prefers_csv:
        fmt = "csv"
    else:
        fmt = "json"
    raw_layout = params.get("layout", "rows").strip().lower()
    if raw_layout not in LAYOUTS:
        raise BadRequest(f"unknown layout {raw_layout!r}; use rows or columns", parameter="layout")
    layout: Layout = raw_layout
    if layout == "columns" and fmt != "msgpack":
        raise BadRequest(
            "layout=columns needs MessagePack (format=msgpack or Accept: application/x-msgpack)",
            parameter="layout",
        )
    return Representation(fmt, layout)


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
