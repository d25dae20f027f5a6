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
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from acechart.server.errors import error_response
from acechart.server.keys import SETTINGS
from acechart.settings import Settings

__all__ = [
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
        return 431, {"error": "headers_too_large", "message": f"Too many request headers: {text}"}
    return 400, {"error": "bad_request", "message": f"Malformed HTTP request: {text}"}


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
    if exc is None:
        return "unreadable request"
    message = exc.message if isinstance(exc, HttpProcessingError) else str(exc)
    text = " ".join(str(message).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:199] + "…"


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
        body: dict[str, Any]
        if status == 400:
            status, body = protocol_error(
                exc, max_line_size=self.max_line_size, max_field_size=self.max_field_size
            )
            logger.info("refused a request from %s: %d %s", request.remote, status, body["error"])
        elif status == 504:
            body = {"error": "timeout", "message": "The request took too long to answer."}
        else:
            self.log_exception("Error handling request from %s", request.remote, exc_info=exc)
            body = {"error": "internal_error", "message": "internal error"}
        response = error_response(status, body)
        manager = self._manager
        if isinstance(manager, JsonErrorServer):
            response.headers.update(manager.error_headers)
        response.force_close()
        return response


class JsonErrorServer(web.Server):
    """aiohttp's low-level server, with `JsonErrorHandler` connections."""

    def __init__(
        self,
        *args: Any,
        error_headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.error_headers: dict[str, str] = dict(error_headers or {})
        """Headers added to every protocol error (CORS for any origin, when configured)."""

    def __call__(self) -> RequestHandler:
        return JsonErrorHandler(self, loop=self._loop, **self._kwargs)


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
