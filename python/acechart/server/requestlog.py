"""One structured log line per request (seed 7.2) with a request id, its formatter and handler.

The request id is the caller's `X-Request-Id` when it looks like one (so ids
follow a request through proxies), else a new one; it is returned in
`X-Request-Id` and quoted in 500 bodies. Handlers fill a `RequestInfo` as they
learn what the request is (site, points, format, class, cache tier); this
middleware, the outermost, writes it out with the status and timing and
records the request metrics. Tokens never reach it: only the first 12 hex
digits of the token's MAC identify a caller.

A request line is written on every request, so its cost is the service's
floor: the JSON is made by orjson, and `LineHandler` writes INFO lines in
batches (`ACECHART_LOG_FLUSH_S`) instead of one write and flush each.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import secrets
import sys
import threading
import time
from datetime import UTC, datetime
from typing import IO, Any

import orjson
from aiohttp import web

from acechart.server.info import RequestInfo

__all__ = [
    "JsonFormatter",
    "LineHandler",
    "configure_logging",
    "endpoint_of",
    "line_fields",
    "log_line",
    "log_request",
    "new_info",
    "request_id",
    "request_line",
]

logger = logging.getLogger(__name__)

_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


_ID_PREFIX = secrets.token_hex(8)
"""Random per process, so ids of different instances or restarts never collide."""
_ID_COUNTER = itertools.count()


def new_info(request: web.Request) -> RequestInfo:
    """The request's `RequestInfo`, its id from `request_id`."""
    return RequestInfo(request_id(request.headers.get("X-Request-Id")), time.perf_counter())


def request_id(given: str | None) -> str:
    """The caller's `X-Request-Id` when it looks like one, else this process's prefix and
    a counter (unique without a system call per request: an id names, it guards
    nothing)."""
    if given is not None and _REQUEST_ID.fullmatch(given):
        return given
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def endpoint_of(request: web.Request) -> str:
    """The route's name (a closed set, safe as a metric label); `unmatched` otherwise."""
    name = request.match_info.route.name
    return name or "unmatched"


def log_request(
    request: web.Request,
    info: RequestInfo,
    status: int,
    elapsed_ms: float,
    size: int | None,
    *,
    cancelled: bool,
) -> None:
    """Write the request's line (seed 7.2 fields) at INFO."""
    # The URL as sent: decoding it would cost more than the rest of the line.
    log_line(request.method, request.raw_path, info, status, elapsed_ms, size, cancelled=cancelled)


def log_line(
    method: str,
    url: str,
    info: RequestInfo,
    status: int,
    elapsed_ms: float,
    size: int | None,
    *,
    cancelled: bool = False,
) -> None:
    """`log_request` for a request known by its method and target (`server.connection`
    answers some before aiohttp makes a request of them)."""
    if not logger.isEnabledFor(logging.INFO):
        return
    key = (
        method,
        url,
        info.site,
        info.point_count,
        info.estimated_samples,
        info.format,
        info.client,
        status,
        info.cache_status,
        info.cache_source,
        size,
        info.samples,
        info.classification,
    )
    processing = round(elapsed_ms, 2)
    sinks = _direct_sinks()
    if sinks:
        made = (time.time(), info.request_id, processing, key)
        for handler in sinks:
            handler.queue(made)
        return
    fields = line_fields(info.request_id, processing, key)
    logger.info(
        "%s %s %d %.1fms%s",
        method,
        url,
        status,
        elapsed_ms,
        " (client gone)" if cancelled else "",
        extra={"fields": fields},
    )


_NAME = logger.name

#: What a request line says beyond its time, id and processing time: the method, URL, site,
#: point count, estimated samples, format, client, status, cache status and source, data
#: size, samples and classification.
LineKey = tuple[Any, ...]


def line_fields(request_id: str, processing: Any, key: LineKey) -> dict[str, Any]:
    """The seed 7.2 fields of a request line (what follows its time, level and logger)."""
    (method, url, site, points, estimated, fmt, client) = key[:7]
    (status, cache_status, cache_source, size, samples, classification) = key[7:]
    return {
        "type": "request",
        "requestId": request_id,
        "request": {
            "method": method,
            "url": url,
            "siteId": site,
            "pointCount": points,
            "estimatedSamples": estimated,
            "format": fmt,
            "client": client,
        },
        "response": {
            "status": status,
            "cacheStatus": cache_status,
            "cacheSource": cache_source,
            "processingTime": processing,
            "dataSize": size,
            "samples": samples,
        },
        "classification": classification,
    }


_AT, _ID, _TOOK = "\x00t", "\x00r", "\x00p"
"""Stand-ins for a line's three changing values in its cached template (a NUL is escaped
in JSON and never in a time, id or number, so each appears once, where it stands)."""
_QUOTED = tuple(f'"\\u0000{c}"' for c in "trp")
_TEMPLATES: dict[LineKey, tuple[str, str, str, str] | None] = {}
_TEMPLATES_MAX = 1024
_UNSEEN: tuple[str, str, str, str] = ("\x00",) * 4
"""What `_TEMPLATES` gives for a key it has not seen (told apart by identity)."""


def request_line(timestamp: str, request_id: str, processing_ms: float, key: LineKey) -> str:
    """The JSON request line, exactly as `JsonFormatter` writes its record.

    Repeated requests (a dashboard's) differ only in time, id and processing time:
    the rest is serialised once per `key` into a template of four pieces, and a line
    is those pieces around the three values. `request_id` is a checked id (letters,
    digits, `._:-`) and `timestamp` ISO digits, so neither needs escaping.
    """
    parts = _TEMPLATES.get(key, _UNSEEN)
    if parts is _UNSEEN:
        parts = _template(key)
        if len(_TEMPLATES) >= _TEMPLATES_MAX:
            _TEMPLATES.clear()
        _TEMPLATES[key] = parts
    if parts is None:
        return _whole_line(timestamp, request_id, processing_ms, key)
    head, after_time, after_id, tail = parts
    number = orjson.dumps(processing_ms).decode()
    return f'{head}"{timestamp}"{after_time}"{request_id}"{after_id}{number}{tail}'


def _whole_line(timestamp: str, request_id: str, processing: Any, key: LineKey) -> str:
    head = {"timestamp": timestamp, "level": "info", "logger": _NAME}
    return _json_line(head | line_fields(request_id, processing, key))


def _template(key: LineKey) -> tuple[str, str, str, str] | None:
    """The line of `key` cut at its three stand-ins; None when a value of `key` itself
    holds one (then each line is serialised whole)."""
    text = _whole_line(_AT, _ID, _TOOK, key)
    pieces: list[str] = []
    for stand_in in _QUOTED:
        before, found, text = text.partition(stand_in)
        if not found or stand_in in text:
            return None
        pieces.append(before)
    pieces.append(text)
    head, after_time, after_id, tail = pieces
    return head, after_time, after_id, tail


Pending = tuple[float, str, float, LineKey]
"""A request line not made yet: its time (`time.time()`), id, processing time and key."""


def _made(line: str | Pending) -> str:
    if isinstance(line, str):
        return line
    created, request_id, processing, key = line
    return request_line(JsonFormatter.timestamp(created), request_id, processing, key)


_sinks: list[LineHandler] | None = None
"""The handlers a request line reaches directly, as last found (None: look again). Found
again after every batch a `LineHandler` writes, and when logging is configured: a
handler added in between sees request lines at most one batch (`log_flush_s`) late."""


def _direct_sinks() -> list[LineHandler]:
    """The handlers a request line would reach, when every one is a `LineHandler` with the
    JSON formatter and nothing on the way filters: the line is then queued on them
    without a `LogRecord` (a third of its cost). Empty otherwise (a capturing test, a
    text format, a handler of another kind): the line goes through `logging`."""
    global _sinks
    if _sinks is not None:
        return _sinks
    found: list[LineHandler] = []
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            found = []
            break
        direct = True
        for handler in current.handlers:
            if (
                type(handler) is not LineHandler
                or type(handler.formatter) is not JsonFormatter
                or handler.filters
            ):
                direct = False
                break
            if handler.level <= logging.INFO:
                found.append(handler)
        if not direct:
            found = []
            break
        if not current.propagate:
            break
        current = current.parent
    _sinks = found
    return found


def _forget_sinks() -> None:
    global _sinks
    _sinks = None


def _json_line(out: dict[str, Any]) -> str:
    try:
        return orjson.dumps(out, default=str).decode()
    except TypeError:
        return _ENCODER.encode(out)


_ENCODER = json.JSONEncoder(default=str)
"""For what orjson refuses (an integer past 64 bits); made once, as `json.dumps` with any
argument builds a new encoder per call."""


_MILLIS = tuple(f".{ms:03d}+00:00" for ms in range(1000))
"""The end of a timestamp after its second, by millisecond (a format per line cost more
than the rest of it)."""


class JsonFormatter(logging.Formatter):
    """Every record as one JSON object; request lines carry their seed 7.2 fields."""

    _last_second: tuple[int, str] = (-1, "")
    """The last second formatted and its text, as one value: a thread writing a batch
    and the loop may format lines at once, and must never pair one's second with the
    other's text."""

    @classmethod
    def timestamp(cls, created: float) -> str:
        """ISO-8601 UTC with milliseconds (`2025-01-01T00:00:00.000+00:00`); the part up
        to the second is made once per second, as a request line is written per request."""
        second = int(created)
        made, stamp = cls._last_second
        if second != made:
            stamp = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            cls._last_second = (second, stamp)
        return stamp + _MILLIS[int((created - second) * 1000)]

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "timestamp": self.timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            out.update(fields)
        else:
            out["message"] = record.getMessage()
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return _json_line(out)


class LineHandler(logging.StreamHandler[IO[str]]):
    """A stream handler that writes INFO lines in batches, at most `delay_s` late.

    On the event loop an INFO (or DEBUG) line is queued, and the queue written
    with one write and one flush `delay_s` after its first line, or at once when
    `max_lines` are queued: a request line per request then costs no system
    call. A warning or an error is written at once, after what is queued, and so
    is every line off the loop (a thread, start-up, shutdown), so lines keep
    their order. `delay_s=0` writes every line at once. A process killed
    outright loses at most `delay_s` of INFO lines; a normal exit writes them
    (logging flushes its handlers).
    """

    def __init__(
        self, stream: IO[str] | None = None, *, delay_s: float = 0.05, max_lines: int = 512
    ) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self.delay_s = delay_s
        self.max_lines = max_lines
        self._queued: list[str | Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_thread = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.queue(line, urgent=record.levelno >= logging.WARNING)

    def queue(self, line: str | Pending, *, urgent: bool = False) -> None:
        """Write `line` with the others of its batch (at once when `urgent` or off the loop).

        A request line may come as its `Pending` parts: it is made when the batch is
        written, with the others (`request_line`), not on the request's path."""
        self._queued.append(line)
        if urgent or len(self._queued) >= self.max_lines or self.delay_s <= 0:
            self.flush()
            return
        if self._timer is not None and threading.get_ident() == self._timer_thread:
            return  # the batch's flush is due on this thread's loop (no getpid() for it)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        if self._timer is None:
            self._timer = loop.call_later(self.delay_s, self.flush)
            self._timer_thread = threading.get_ident()

    def flush(self) -> None:
        self.acquire()
        try:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._queued:
                queued, self._queued = self._queued, []
                self.stream.write("\n".join(map(_made, queued)) + "\n")
            self.stream.flush()
            _forget_sinks()
        except Exception:
            self._queued.clear()
        finally:
            self.release()


def configure_logging(log_format: str, flush_s: float = 0.05) -> None:
    """Write the root's stream handlers' lines in batches (`LineHandler`, INFO lines at
    most `flush_s` late), as JSON lines (`json`) or in their text format (`text`).

    A record also skips what the service's lines never show (the caller's source
    line, thread, process and task names): the logging HOWTO's own optimisations,
    a fifth of the cost of the request line written per request.
    """
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    _forget_sinks()
    root = logging.getLogger()
    for handler in list(root.handlers):
        if type(handler) is not logging.StreamHandler:
            continue
        batched = LineHandler(handler.stream, delay_s=flush_s)
        batched.setLevel(handler.level)
        batched.setFormatter(JsonFormatter() if log_format == "json" else handler.formatter)
        root.removeHandler(handler)
        root.addHandler(batched)
