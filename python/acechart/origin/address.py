"""Keeping the origin's address out of what callers see.

The origin's host and port are deployment detail (often an internal name or a
private address behind acechart): an error body that quotes them tells any
caller where the API lives. Errors are therefore worded without them, and this
scrubber is the last line: every form an address takes in an exception text
(`http://host:port`, `host:port`, `[host]:port`, `('host', port)`, the bare
host) is replaced by `the origin` before a message leaves the origin client or
an error body leaves the server.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit

__all__ = ["AddressScrubber", "transport_reason"]

_HIDDEN = "the origin"


class AddressScrubber:
    """Removes one origin's address from texts."""

    def __init__(self, origin_url: str) -> None:
        parts = urlsplit(origin_url)
        host = (parts.hostname or "").lower()
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is None:
            port = 443 if parts.scheme == "https" else 80
        forms: list[str] = []
        if host:
            bracketed = f"[{host}]" if ":" in host else host
            forms += [
                rf"{re.escape(parts.scheme)}://[^\s/'\"]*{re.escape(bracketed)}(?::{port})?",
                rf"\(\s*'{re.escape(host)}'\s*,\s*{port}\s*\)",
                rf"{re.escape(bracketed)}:{port}(?!\d)",
                rf"(?<![\w.-]){re.escape(host)}(?![\w-])",
            ]
        self.port = port
        self.host = host
        self._pattern = re.compile("|".join(forms), re.IGNORECASE) if forms else None

    def __call__(self, text: str) -> str:
        """`text` with every form of the origin's address replaced by `the origin`."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(_HIDDEN, text)


def transport_reason(exc: BaseException) -> str:
    """What went wrong on the way to the origin, without the address aiohttp quotes.

    aiohttp's connection errors read "Cannot connect to host H:P ..."; the kind of
    failure and the operating system's word for it (`Connection refused`) are all a
    caller needs.
    """
    kind = type(exc).__name__
    os_error = getattr(exc, "os_error", None)
    number = getattr(os_error, "errno", None)
    if isinstance(number, int) and number > 0:
        return f"{kind} ({os.strerror(number)})"
    return kind
