"""L1: the in-process cache of encoded responses, bounded in bytes, least recently used first.

An entry is one encoded answer (one query in one format and layout) plus the
compressed variants made of it so far, so a popular answer is neither
re-encoded nor re-compressed. Its lifetime follows the seed's TTL table by
data age (`cache.policy`): fresh for `fresh_s`; then, for `stale_s` more,
served stale while the caller refreshes it in the background
(stale-while-revalidate); then, until `error_s` after it went stale, kept only
to answer when the origin fails (stale-if-error). Callers check the token's
access to the site before any lookup: the cache itself knows no tokens.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["ERROR_ONLY", "FRESH", "STALE", "EdgeCache", "Entry", "Freshness", "Lookup", "Slot"]

_ENTRY_OVERHEAD = 512
"""Bytes charged per entry beyond its bodies (key, headers, bookkeeping)."""

_MAX_SHARE = 4
"""No single entry may take more than 1/_MAX_SHARE of the budget."""


class Freshness(enum.Enum):
    FRESH = "fresh"
    STALE = "stale"
    """Past its TTL but inside stale-while-revalidate: serve, then refresh."""
    ERROR_ONLY = "error_only"
    """Past stale-while-revalidate: only a failing origin may bring it back."""


# The members as plain names: an enum's attribute costs four times a global's, and the
# hit path compares one on every cached answer.
FRESH, STALE, ERROR_ONLY = Freshness.FRESH, Freshness.STALE, Freshness.ERROR_ONLY


Slot = tuple[str, str, str | None, str | None]
"""What sets an answer's headers apart besides its entry and time: cache status, cache
source, content coding and Warning."""


@dataclass(eq=False)
class Entry:
    """One encoded answer and what its responses need besides the body."""

    body: bytes
    content_type: str
    etag: str
    samples: int
    max_age_s: int
    """Freshness lifetime (the seed's edge TTL for the data's age)."""
    stale_s: float
    """stale-while-revalidate window after `max_age_s`."""
    error_s: float
    """stale-if-error window after `max_age_s`."""
    stored_at: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    """Response headers every answer from this entry carries (type, ETag, Vary, ...)."""
    variants: dict[str, bytes] = field(default_factory=dict)
    """Compressed bodies by content coding."""
    blocks: dict[Slot, tuple[int, int, bytes | None]] = field(default_factory=dict)
    """Serialised response headers by slot, with the max-age and age they were made for
    (`respond`): remade when those change, once a second at most."""

    @property
    def size(self) -> int:
        return len(self.body) + sum(len(v) for v in self.variants.values()) + _ENTRY_OVERHEAD


class Lookup(NamedTuple):
    """What `lookup` found (a tuple: made on every cached answer)."""

    entry: Entry
    freshness: Freshness
    age_s: float


class EdgeCache:
    """A byte-bounded LRU of `Entry` by a hashable key (normalised query + representation)."""

    def __init__(self, max_bytes: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.clock = clock
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._bytes = 0

    @property
    def size_bytes(self) -> int:
        """Bytes held, bodies and variants included."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, key: Hashable) -> Lookup | None:
        """The entry under `key` and how fresh it is; entries past every window are dropped."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        age = self.clock() - entry.stored_at
        if age < entry.max_age_s:
            freshness = FRESH
        elif age < entry.max_age_s + entry.stale_s:
            freshness = STALE
        elif age < entry.max_age_s + entry.error_s:
            freshness = ERROR_ONLY
        else:
            self._drop(key)
            return None
        if freshness is not ERROR_ONLY:
            self._entries.move_to_end(key)
        return Lookup(entry, freshness, age)

    def store(self, key: Hashable, entry: Entry) -> bool:
        """Keep `entry` under `key` (replacing any); False when it is too big to keep."""
        if key in self._entries:
            self._drop(key)
        if entry.size * _MAX_SHARE > self.max_bytes:
            return False
        entry.stored_at = self.clock()
        self._entries[key] = entry
        self._bytes += entry.size
        self._evict()
        return True

    def add_variant(self, key: Hashable, entry: Entry, coding: str, body: bytes) -> None:
        """Remember a compressed body of `entry`, if it is still the one cached under `key`."""
        if self._entries.get(key) is not entry or coding in entry.variants:
            return
        entry.variants[coding] = body
        self._bytes += len(body)
        if entry.size * _MAX_SHARE > self.max_bytes:
            self._drop(key)
        self._evict()

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: Hashable) -> None:
        entry = self._entries.pop(key)
        self._bytes -= entry.size

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._entries:
            oldest = next(iter(self._entries))
            self._drop(oldest)
