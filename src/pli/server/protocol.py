"""The HTTP/1.1 protocol `pli serve` runs: uvicorn's httptools protocol, plus the limits it lacks.

Measured against uvicorn 0.54 with httptools 0.9 (see docs/security.md): a connection that sends
nothing, or a request head one line per second, is kept open indefinitely; a single 200 MB
header is buffered whole; 10,000 headers are accepted; and a body left unread by a route that
answered early can be trickled into the connection forever. This protocol adds, per connection:

- a deadline for the request line and headers (`header_timeout`, from the connection's start or
  the first byte of a later request): a client that sent nothing is disconnected, one that sent
  part of a request gets 408;
- a bound on the size of the request line and headers together (`max_header_bytes`), counted on
  the raw bytes before the parser buffers them, and on their number (`max_headers`): 431;
- a closed connection when a response is complete while its request body is still arriving.

Refusals are `application/problem+json` with the security headers of `pli.server.security`, and
`Connection: close`. Body time limits are enforced in `pli.server.security.BodyTimeouts`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from http import HTTPStatus
from typing import Any, ClassVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from pli.server.config import Settings
from pli.server.security import fixed_headers

log = logging.getLogger("pli.server")


class _RefusedError(Exception):
    """Raised from a parser callback to stop parsing a request that is being refused."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    max_header_bytes: ClassVar[int] = 64 << 10
    max_headers: ClassVar[int] = 100
    header_timeout: ClassVar[float] = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._in_head = True  # the next bytes belong to a request line or headers
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._refusal: tuple[int, str] | None = None

    # --- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._in_head:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.max_header_bytes:
            self._refuse(431, "the request line and headers are too large")

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to anything the parser rejects, our own refusals included.
        status, detail = self._refusal or (400, "the request is not valid HTTP/1.1")
        self._refuse(status, detail)

    # --- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._header_count = 0
        if self._head_timer is None:
            self._start_head_timer()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.max_headers:
            self._refusal = (431, f"more than {self.max_headers} request headers")
            raise _RefusedError
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._stop_head_timer()
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True

    def on_response_complete(self) -> None:
        cycle = self.cycle
        super().on_response_complete()
        # Answered before its body finished arriving: the rest of that body must not be able to
        # hold the connection open, so the client starts again on a new one.
        if cycle.response_complete and cycle.more_body and not self.transport.is_closing():
            self.transport.close()

    # --- helpers -------------------------------------------------------------------------

    def _start_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._in_head:
            return
        if self._head_bytes == 0:
            self.transport.close()  # connected (or kept alive), but sent nothing since
        else:
            self._refuse(408, "the request headers arrived too slowly: the server stopped waiting")

    def _refuse(self, status: int, detail: str) -> None:
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
        log.info("%s refused with %d: %s", client, status, detail)
        title = HTTPStatus(status).phrase
        body = json.dumps(
            {"type": "about:blank", "title": title, "status": status, "detail": detail}
        )
        headers = [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"connection", b"close"),
            *fixed_headers(tls=self.scheme == "https"),
        ]
        head = b"".join(name + b": " + value + b"\r\n" for name, value in headers)
        self.transport.write(STATUS_LINE[status] + head + b"\r\n" + body.encode("ascii"))
        self.transport.close()


def protocol_for(settings: Settings) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for uvicorn's `http=` option, with the limits of `settings`."""

    class Configured(LimitedHttpToolsProtocol):
        max_header_bytes = settings.max_header_bytes
        max_headers = settings.max_headers
        header_timeout = settings.header_timeout.total_seconds()

    return Configured
