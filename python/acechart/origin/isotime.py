"""ISO-8601 <-> milliseconds since the Unix epoch (UTC), as the ACE API writes them.

The API speaks ISO-8601 with a `Z` suffix; the rest of acechart speaks int64
milliseconds. Naive timestamps are taken as UTC, which is what the API does.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_iso_ms", "parse_iso_ms", "to_ms"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_iso_ms(text: str) -> int:
    """`2024-01-01T00:00:00Z` (or with an offset, fraction, or none) -> ms since epoch.

    Raises ValueError with the offending text for anything else.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO-8601 timestamp: {text!r}") from None
    return to_ms(moment)


def to_ms(moment: datetime | int) -> int:
    """A datetime (naive means UTC) or ms integer -> ms since epoch."""
    if isinstance(moment, int):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def format_iso_ms(ms: int) -> str:
    """ms since epoch -> `2024-01-01T00:00:00Z`, with `.mmm` only when not whole seconds."""
    seconds, millis = divmod(ms, 1000)
    moment = datetime.fromtimestamp(seconds, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{millis:03d}Z" if millis else f"{text}Z"
