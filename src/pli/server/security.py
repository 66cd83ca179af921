"""HTTP hardening in front of the whole application (see docs/security.md).

`harden(app, settings)` is the application `pli serve` runs: the FastAPI app wrapped, outermost,
in two plain ASGI middlewares, so that they also see the answers the framework writes itself
(a 500 from its last-resort error handler, a 404 for an unknown path):

- `SecurityHeaders` adds the security headers to every response.
- `BodyTimeouts` cuts off a client that sends a request body too slowly.
- `ProblemErrors` turns an error the framework writes as plain text into a problem object, like
  every other error: today the 413 its body limit answers when a declared `Content-Length` is
  over the limit (bodies: 8 MiB, `FastAPI(max_body_size=...)`; uploads: their own route limit).

What ASGI cannot see (the request line and headers, before the app is called) is bounded in
`pli.server.protocol`, which writes its refusals with the same headers (`fixed_headers`).
There is no CORS middleware on purpose: no answer carries an `Access-Control-Allow-*` header, so
browsers keep other origins' scripts from reading the API.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from http import HTTPStatus

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pli.server.config import Settings

# The API serves no HTML: nothing may load, frame it, or be the target of a form. A web app
# serving pages will pass its own policy for them.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=63072000; includeSubDomains"

# Always set, replacing whatever a route might have set.
_FIXED = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def fixed_headers(*, tls: bool, csp: str = DEFAULT_CSP) -> list[tuple[bytes, bytes]]:
    """Every header `SecurityHeaders` adds, for a response that sets none of its own."""
    headers = [*_FIXED, (b"content-security-policy", csp.encode("ascii"))]
    headers.append((b"cache-control", b"no-store"))
    if tls:
        headers.append((b"strict-transport-security", HSTS.encode("ascii")))
    return headers


class SecurityHeaders:
    """Adds the security headers to every HTTP response, whatever produced it.

    `nosniff`, `no-referrer`, `DENY`, `same-origin` and (over TLS only) HSTS always replace
    what a response set. The content security policy (`csp`) and `Cache-Control: no-store` are
    defaults: a response that sets its own keeps it (a page with its own policy, a cacheable
    static asset). HSTS is sent only on connections that are TLS (`scheme` is `https`): over plain
    HTTP a browser ignores it, and announcing it there would be wrong.
    """

    def __init__(self, app: ASGIApp, *, csp: str = DEFAULT_CSP) -> None:
        self.app = app
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        added = fixed_headers(tls=scope.get("scheme") == "https", csp=self.csp)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _merge(message.get("headers", ()), added)}
            await send(message)

        await self.app(scope, receive, send_with_headers)


_DEFAULTS = frozenset({b"content-security-policy", b"cache-control"})


def _merge(
    own: Iterable[tuple[bytes, bytes]], added: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    own = list(own)
    present = {name.lower() for name, _ in own}
    forced = {name for name, _ in added if name not in _DEFAULTS}
    kept = [(name, value) for name, value in own if name.lower() not in forced]
    return kept + [(n, v) for n, v in added if n in forced or n not in present]


class SlowBodyError(HTTPException):
    """The client sent its request body too slowly (answered 408, connection closed)."""

    def __init__(self) -> None:
        super().__init__(408, "the request body arrived too slowly: the server stopped waiting")


class BodyTimeouts:
    """Cuts off a request whose body trickles in.

    While the app waits for body bytes, the client gets `timeout` seconds of waiting, plus one
    second for every `min_rate` bytes it has sent: a body must keep up an average of `min_rate`
    bytes/s once the first `timeout` seconds are spent, and no single wait may exceed `timeout`.
    Only time spent waiting for the client counts (not the app's own work between reads), and
    only until the body is complete: a response streamed afterwards is not timed. A client cut off
    gets 408 with `Connection: close` if no response has started, else the connection is dropped.
    """

    def __init__(self, app: ASGIApp, *, timeout: float, min_rate: float) -> None:
        self.app = app
        self.timeout = timeout
        self.min_rate = min_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        waited, received, complete, cut_off = 0.0, 0, False, False

        async def timed_receive() -> Message:
            nonlocal waited, received, complete, cut_off
            if complete:
                return await receive()
            budget = min(self.timeout, self.timeout + received / self.min_rate - waited)
            started = loop.time()
            try:
                async with asyncio.timeout(max(budget, 0.0)):
                    message = await receive()
            except TimeoutError:
                cut_off = True
                raise SlowBodyError from None
            finally:
                waited += loop.time() - started
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
            else:
                complete = True
            return message

        async def send_closing(message: Message) -> None:
            if cut_off and message["type"] == "http.response.start":
                headers = [(n, v) for n, v in message.get("headers", ()) if n != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, timed_receive, send_closing)


class ProblemErrors:
    """Every error answer is `application/problem+json`: one the app wrote otherwise (the
    framework's own plain-text answers) is replaced by a problem with the status's standard
    title. HEAD answers, which have no body, are left alone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "HEAD":
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # the start of an answer being replaced

        async def send_problems(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start" and _plain_error(message):
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            if message.get("more_body", False):
                return  # the original body is dropped
            status = HTTPStatus(held["status"])
            detail = _DETAILS.get(status, status.description)
            problem = {"type": "about:blank", "title": status.phrase, "status": status.value}
            body = json.dumps({**problem, "detail": detail}).encode("ascii")
            headers = [(n, v) for n, v in held.get("headers", ()) if n.lower() not in _REPLACED]
            headers += [(b"content-type", PROBLEM), (b"content-length", b"%d" % len(body))]
            await send({**held, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, send_problems)


PROBLEM = b"application/problem+json"
_REPLACED = frozenset({b"content-type", b"content-length", b"transfer-encoding"})
_DETAILS = {413: "the request body is larger than this server accepts"}


def _plain_error(start: Message) -> bool:
    if start["status"] < 400:
        return False
    types = [v for n, v in start.get("headers", ()) if n.lower() == b"content-type"]
    return not types or not types[0].startswith(PROBLEM)


def harden(app: ASGIApp, settings: Settings, *, csp: str = DEFAULT_CSP) -> ASGIApp:
    """The application as served: body time limits inside, then errors as problems, then the
    security headers outermost."""
    timed = BodyTimeouts(
        app,
        timeout=settings.body_timeout.total_seconds(),
        min_rate=float(settings.body_min_rate),
    )
    return SecurityHeaders(ProblemErrors(timed), csp=csp)
