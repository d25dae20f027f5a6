"""Instants as int64 milliseconds since the Unix epoch (UTC), and their ISO-8601 text.

The one home of the epoch and of the two conversions every layer needs: the
engine, the blocks and the encoders speak milliseconds; the API, the origin
and the logs speak ISO-8601. Naive times mean UTC, as the ACE API means them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["EPOCH", "format_time", "from_ms", "parse_iso_ms", "to_ms"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


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
