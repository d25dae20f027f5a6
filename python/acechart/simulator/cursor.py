"""The simulator's pagination cursors: the real API's, and the idealised one.

`OffsetCursor` is the real API's: base64 of the JSON `{"offset": n,
"timestamp": ".."}`, meaning "skip n samples at or after that instant". The
API sets n to the samples of the page's last timestamp and never adds the
offset it was given, so a page that starts and ends inside one timestamp hands
back the cursor it came with (see `app`).

`Cursor` is the idealised one: the position after the last sample sent, (time,
point index), plus a fingerprint of the query it belongs to, packed and
urlsafe-base64 encoded. Holding the position rather than an offset makes
resuming O(page): the next page is generated from that time on, however deep
into the range. The fingerprint makes a cursor replayed against another query
a 422 instead of silently returning the wrong data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import struct
from dataclasses import dataclass
from datetime import datetime

__all__ = ["Cursor", "OffsetCursor", "query_fingerprint"]


@dataclass(frozen=True)
class OffsetCursor:
    """The real API's cursor: skip `offset` samples at or after `timestamp` (naive, UTC)."""

    offset: int
    timestamp: str

    def encode(self) -> str:
        text = json.dumps({"offset": self.offset, "timestamp": self.timestamp})
        return base64.b64encode(text.encode()).decode()

    @classmethod
    def decode(cls, text: str) -> OffsetCursor:
        """Parse a cursor; ValueError when it is not base64 JSON of that shape."""
        try:
            doc = json.loads(base64.b64decode(text, validate=True))
            offset, timestamp = doc["offset"], doc["timestamp"]
            if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                raise ValueError("bad offset")
            datetime.fromisoformat(timestamp)
        except (binascii.Error, UnicodeDecodeError, TypeError, KeyError, ValueError):
            raise ValueError("malformed cursor") from None
        return cls(offset, timestamp)


_VERSION = 1
_LAYOUT = struct.Struct("<B8sqiq")


def query_fingerprint(
    site: str, start_ms: int, end_ms: int, raw: bool, points: list[str] | None
) -> bytes:
    """8 bytes naming one query; the page size is left out, so it may change between pages."""
    names = "*" if points is None else "\x1f".join(sorted(set(points)))
    text = f"{site}\x1e{start_ms}\x1e{end_ms}\x1e{int(raw)}\x1e{names}"
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: after (t_ms, idx); `sent` samples were sent before it."""

    fingerprint: bytes
    t_ms: int
    idx: int
    sent: int

    def encode(self) -> str:
        packed = _LAYOUT.pack(_VERSION, self.fingerprint, self.t_ms, self.idx, self.sent)
        return base64.urlsafe_b64encode(packed).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str, fingerprint: bytes) -> Cursor:
        """Parse a cursor of the query `fingerprint`; ValueError when malformed or foreign."""
        try:
            packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            version, fp, t_ms, idx, sent = _LAYOUT.unpack(packed)
        except (binascii.Error, struct.error, ValueError):
            raise ValueError("malformed cursor") from None
        if version != _VERSION:
            raise ValueError("cursor of an unknown version")
        if fp != fingerprint:
            raise ValueError("cursor belongs to another query")
        return cls(fp, t_ms, idx, sent)
