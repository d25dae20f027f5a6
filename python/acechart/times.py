"""Instants as int64 milliseconds since the Unix epoch (UTC), and their ISO-8601 text.

The one home of the epoch and of the two conversions every layer needs: the
engine, the blocks and the encoders speak milliseconds; the API, the origin
and the logs speak ISO-8601. Naive times mean UTC, as the ACE API means them.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH", "format_time", "from_ms", "parse_iso_ms", "relative_ms", "to_ms"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
#: A time before now: `-7d`, `-2h`, `- 90 min`, `-1.5w`.
_RELATIVE = re.compile(r"^\s*-\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d|w)\s*$", re.I)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
_UNIT_MS["w"] = 7 * _UNIT_MS["d"]


def to_ms(moment: datetime | int) -> int:
    """A datetime (naive means UTC) or ms integer -> ms since epoch (sub-ms truncated)."""
    if isinstance(moment, int):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - EPOCH) // _MS


def from_ms(ms: int) -> datetime:
    """ms since epoch -> an aware UTC datetime."""
    return EPOCH + ms * _MS


def format_time(ms: int) -> str:
    """ms -> `2024-01-01T00:00:00Z`, with `.mmm` only when not whole seconds."""
    text = from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{ms % 1000:03d}Z" if ms % 1000 else f"{text}Z"


def parse_iso_ms(text: str) -> int:
    """`2024-01-01T00:00:00Z` (or with an offset, a fraction, or naive) -> ms since epoch.

    Raises ValueError quoting the text for anything else.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}") from None
    return to_ms(moment)


def relative_ms(text: str, now_ms: int) -> int | None:
    """`now` or a time before it (`-7d`, `-2h`, `-30min`) -> ms; None for any other text.

    The one grammar of relative times, for saved charts and the notebook API alike.
    """
    if text.strip().lower() == "now":
        return now_ms
    relative = _RELATIVE.match(text)
    if relative is None:
        return None
    amount, unit = float(relative.group(1)), relative.group(2).lower()
    return now_ms - round(amount * _UNIT_MS[unit])
