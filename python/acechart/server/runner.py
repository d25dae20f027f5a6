"""How the service is served: request-line limits that fit long point lists, and JSON
answers to what aiohttp refuses before any route runs.

aiohttp reads the request line and the headers before routing, and answers a
line longer than its `max_line_size` (8190 bytes by default), a header longer
than `max_field_size`, or a malformed request with a plain-text 400 of its
own, which no middleware sees. A GET naming 100 ACE points of about 90
characters each does not fit in 8190 bytes, so:

- `handler_args(settings)` raises the limits to `server_max_line_bytes` and
  `server_max_field_bytes`. `create_app` gives them to the application as its
  `handler_args`, so every runner of the app (this module's, aiohttp's test
  server, the demo's) reads lines up to them.
- `AppRunner`, a `web.AppRunner`, makes its connections `JsonErrorHandler`s,
  whose `handle_error` answers in the seed's JSON error shape: a request line
  past the limit is a 414 telling the client to send the parameters with
  POST, a header past it (or too many headers) a 431, any other malformed
  request a 400, and the rare error no middleware caught a 500. `acechart
  serve` (`run`) and the tests serve through it.

What the parser refused may be a header carrying a token (a stray `\x7f` after
it, an oversize `Authorization`), and aiohttp's messages quote the bytes they
choke on. So neither the answer nor the log quotes them: both carry the error
class, the parser's reason up to its first colon (the part that names no
data) and a request id, and the handler's own logging (`log_exception`,
`log_debug`) keeps tracebacks to their frames, without exception messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import signal
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from acechart.server.errors import error_response
from acechart.server.keys import SETTINGS
from acechart.settings import Settings

__all__ = [
    "CONNECTIONS",
    "AppRunner",
    "JsonErrorHandler",
    "JsonErrorServer",
    "handler_args",
    "protocol_error",
    "run",
]

logger = logging.getLogger(__name__)

POST_HINT = (
    "send the parameters as a JSON object body with POST instead"
    ' (POST /api/timeseries or /api/aggregations, {"site": .., "points": [..],'
    ' "start": .., "end": ..})'
)


def handler_args(settings: Settings) -> dict[str, Any]:
    """The connection settings of the service (aiohttp's `RequestHandler` arguments)."""
    return {
        "max_line_size": settings.server_max_line_bytes,
        "max_field_size": settings.server_max_field_bytes,
    }


def protocol_error(
    exc: BaseException | None, *, max_line_size: int, max_field_size: int
) -> tuple[int, dict[str, Any]]:
    """(status, JSON body) for a request aiohttp's parser refused."""
    if isinstance(exc, LineTooLong):
        line, limit = exc.args[0], exc.args[1]
        if _is_request_line(line, limit, max_line_size, max_field_size):
            return 414, {
                "error": "uri_too_long",
                "message": f"The request line is longer than {max_line_size} bytes: {POST_HINT}.",
                "maxLineBytes": max_line_size,
                "suggestions": [
                    "POST the same parameters as a JSON body; points may be a list",
                    "Request fewer points per query",
                ],
            }
        return 431, {
            "error": "headers_too_large",
            "message": f"A request header is longer than {max_field_size} bytes.",
            "maxFieldBytes": max_field_size,
        }
    text = _text(exc)
    if "too many headers" in text.lower():
        return 431, {"error": "headers_too_large", "message": "Too many request headers."}
    return 400, {"error": "bad_request", "message": f"Malformed HTTP request: {_reason(exc)}."}


def _is_request_line(line: object, limit: object, max_line: int, max_field: int) -> bool:
    """Whether a `LineTooLong` is about the request line (else a header): by the limit it
    broke, and when both limits are equal by its start (a target is `/...`, `*` or a URL;
    a header name is a token, never starting so)."""
    try:
        broke = int(str(limit))
    except ValueError:
        broke = -1
    if broke == max_line and broke != max_field:
        return True
    if broke == max_field and broke != max_line:
        return False
    start = line if isinstance(line, bytes) else str(line).encode()
    return start.startswith((b"/", b"*", b"http://", b"https://"))


def _text(exc: BaseException | None) -> str:
    """The parser's whole message: for classifying only, never to show (it quotes data)."""
    if exc is None:
        return "unreadable request"
    message = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    return " ".join(str(message).split()) or type(exc).__name__


#: A parser reason safe to show: words only (llhttp's reasons precede a colon and the
#: quoted bytes, as in `Invalid header value char: b'X-ACE-Token: ...'`).
_SAFE_REASON = re.compile(r"[A-Za-z][A-Za-z ]{0,79}")


def _reason(exc: BaseException | None) -> str:
    """What was wrong, in words that quote nothing the client sent."""
    head = _text(exc).split(":", 1)[0].strip()
    name = type(exc).__name__ if exc is not None else "unreadable request"
    if _SAFE_REASON.fullmatch(head) and head != name:
        return f"{head} ({name})"
    return name


def _frames(exc: BaseException | None) -> str:
    """A traceback's frames and the exception's class, without its message (which may
    quote a header)."""
    if exc is None:
        return ""
    return "".join(traceback.format_tb(exc.__traceback__)) + type(exc).__name__


class JsonErrorHandler(RequestHandler):
    """aiohttp's connection handler, answering what it refuses before routing in JSON."""

    __slots__ = ()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:
            raise ConnectionError(
                "Response is sent already, cannot send another response with the error message"
            )
        rid = secrets.token_hex(16)
        body: dict[str, Any]
        if status == 400:
            status, body = protocol_error(
                exc, max_line_size=self.max_line_size, max_field_size=self.max_field_size
            )
            logger.info(
                "refused a request from %s: %d %s (%s, request %s)",
                request.remote,
                status,
                body["error"],
                type(exc).__name__ if exc is not None else "-",
                rid,
            )
        elif status == 504:
            body = {"error": "timeout", "message": "The request took too long to answer."}
        else:
            logger.error(
                "error handling a request from %s (%s, request %s)\n%s",
                request.remote,
                type(exc).__name__ if exc is not None else "-",
                rid,
                _frames(exc),
            )
            body = {
                "error": "internal_error",
                "message": f"internal error; quote request id {rid} when reporting it",
            }
        body["requestId"] = rid
        response = error_response(status, body)
        response.headers["X-Request-Id"] = rid
        manager = self._manager
        if isinstance(manager, JsonErrorServer):
            response.headers.update(manager.error_headers)
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's own error logging, with the traceback's frames but not the message."""
        self._log(logging.ERROR, args, kw)

    def log_debug(self, *args: Any, **kw: Any) -> None:
        if self.logger.isEnabledFor(logging.DEBUG):
            self._log(logging.DEBUG, args, kw)

    def _log(self, level: int, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
        exc_info = kw.pop("exc_info", None)
        exc = exc_info if isinstance(exc_info, BaseException) else None
        if exc_info is True or isinstance(exc_info, tuple):
            exc = sys.exc_info()[1] if exc_info is True else exc_info[1]
        fmt, *rest = args or ("aiohttp connection error",)
        if exc is None:
            self.logger.log(level, fmt, *rest)
        else:
            self.logger.log(level, str(fmt) + "\n%s", *rest, _frames(exc))


Connections = Callable[..., JsonErrorHandler]
"""What makes a connection's handler: `JsonErrorHandler`'s arguments, one of its kind."""

CONNECTIONS: web.AppKey[Connections] = web.AppKey("acechart_connections")
"""The application's connection handlers, if not `JsonErrorHandler`s (`server.connection`)."""


class JsonErrorServer(web.Server):
    """aiohttp's low-level server, with `JsonErrorHandler` connections (or `connections`')."""

    def __init__(
        self,
        *args: Any,
        error_headers: Mapping[str, str] | None = None,
        connections: Connections = JsonErrorHandler,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.error_headers: dict[str, str] = dict(error_headers or {})
        """Headers added to every protocol error (CORS for any origin, when configured)."""
        self._connections_made = connections

    def __call__(self) -> RequestHandler:
        return self._connections_made(self, loop=self._loop, **self._kwargs)


class AppRunner(web.AppRunner):
    """`web.AppRunner` whose server is a `JsonErrorServer`."""

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        settings = self.app.get(SETTINGS)
        cors_any = settings is not None and "*" in settings.cors_origins
        return JsonErrorServer(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            loop=asyncio.get_running_loop(),
            error_headers={"Access-Control-Allow-Origin": "*"} if cors_any else None,
            connections=self.app.get(CONNECTIONS, JsonErrorHandler),
            **made._kwargs,
        )


def run(app: web.Application, *, host: str, port: int) -> None:
    """Serve `app` on host:port until SIGINT or SIGTERM, then shut down gracefully."""
    asyncio.run(_serve(app, host, port))


async def _serve(app: web.Application, host: str, port: int) -> None:
    runner = AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await runner.cleanup()
