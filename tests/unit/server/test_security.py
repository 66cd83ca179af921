"""The ASGI hardening of pli.server.security, in process, and the admin network check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from pli.server.admin.service import address_allowed
from pli.server.app import create_app
from pli.server.config import Settings
from pli.server.security import (
    DEFAULT_CSP,
    HSTS,
    BodyTimeouts,
    ProblemErrors,
    SecurityHeaders,
    SlowBodyError,
    harden,
)

LOOPBACK = ("127.0.0.0/8", "::1/128")


@pytest.mark.parametrize(
    ("address", "networks", "allowed"),
    [
        ("127.0.0.1", LOOPBACK, True),
        ("127.8.9.10", LOOPBACK, True),
        ("::1", LOOPBACK, True),
        ("::ffff:127.0.0.1", LOOPBACK, True),  # IPv4 through a dual-stack socket
        ("10.0.0.1", LOOPBACK, False),
        ("::ffff:10.0.0.1", LOOPBACK, False),
        ("10.0.0.1", ("10.0.0.0/8",), True),
        ("127.0.0.1", ("10.0.0.0/8",), False),
        ("127.0.0.1", (), False),
        ("", LOOPBACK, False),
        (None, LOOPBACK, False),
        ("localhost", LOOPBACK, False),  # not an address: never trusted
        ("127.0.0.1, 10.0.0.1", LOOPBACK, False),
    ],
)
def test_admin_network(address: str | None, networks: tuple[str, ...], allowed: bool) -> None:
    assert address_allowed(address, networks) is allowed


def _app_with_headers(headers: list[tuple[bytes, bytes]], status: int = 200) -> SecurityHeaders:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"x"})

    return SecurityHeaders(app)


async def _get(app: object, url: str = "http://pli/") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.get(url)


def test_forced_headers_replace_a_routes_own_and_defaults_do_not() -> None:
    own = [
        (b"x-frame-options", b"ALLOWALL"),
        (b"content-security-policy", b"default-src 'self'"),
        (b"cache-control", b"public, max-age=60"),
    ]
    got = asyncio.run(_get(_app_with_headers(own)))
    assert got.headers.get_list("x-frame-options") == ["DENY"]
    assert got.headers.get_list("content-security-policy") == ["default-src 'self'"]
    assert got.headers.get_list("cache-control") == ["public, max-age=60"]
    assert got.headers["x-content-type-options"] == "nosniff"
    plain = asyncio.run(_get(_app_with_headers([])))
    assert plain.headers["content-security-policy"] == DEFAULT_CSP
    assert plain.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in plain.headers
    tls = asyncio.run(_get(_app_with_headers([]), "https://pli/"))
    assert tls.headers["strict-transport-security"] == HSTS


def test_the_policy_is_a_parameter() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    got = asyncio.run(_get(SecurityHeaders(app, csp="default-src 'self'")))
    assert got.headers["content-security-policy"] == "default-src 'self'"


def test_server_errors_carry_the_headers_too(tmp_path: Path) -> None:
    """A 500 is written by the framework's outermost error handler, outside any middleware
    added to the app: the headers are there only because `harden` wraps the whole app."""
    app = create_app(Settings(data_dir=tmp_path))

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    got = asyncio.run(_get(harden(app, Settings(data_dir=tmp_path)), "http://pli/boom"))
    assert got.status_code == 500
    assert got.headers["content-type"] == "application/problem+json"
    assert got.headers["content-security-policy"] == DEFAULT_CSP
    assert got.headers["x-content-type-options"] == "nosniff"


def test_plain_errors_become_problems() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        plain = [(b"content-type", b"text/plain"), (b"content-length", b"17"), (b"x-kept", b"1")]
        await send({"type": "http.response.start", "status": 413, "headers": plain})
        await send({"type": "http.response.body", "body": b"Content Too Large"})

    got = asyncio.run(_get(ProblemErrors(app)))
    assert got.status_code == 413
    assert got.headers["content-type"] == "application/problem+json"
    assert got.headers["x-kept"] == "1"
    assert got.json() == {
        "type": "about:blank",
        "title": "Request Entity Too Large",
        "status": 413,
        "detail": "the request body is larger than this server accepts",
    }


def test_answers_that_are_not_plain_errors_pass_unchanged() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok", "more_body": True})
        await send({"type": "http.response.body", "body": b"!"})

    got = asyncio.run(_get(ProblemErrors(app)))
    assert (got.status_code, got.content) == (200, b"ok!")


async def _echo_length(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, waits a while, then answers with its length."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    await asyncio.sleep(0.5)  # the app's own time is never the client's fault
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


async def _post_trickle(app: object, chunk: bytes, every: float, count: int) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(count):
            await asyncio.sleep(every)
            yield chunk

    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, timeout=30) as client:
        return await client.post("http://pli/", content=body())


def test_a_body_below_the_minimum_rate_is_cut_off() -> None:
    # Every gap (0.1 s) is shorter than the timeout (0.3 s), but 1 byte per 0.1 s is far below
    # 100 bytes/s: the budget of 0.3 s + 1 byte / 100 bytes/s per byte runs out.
    app = BodyTimeouts(_echo_length, timeout=0.3, min_rate=100)
    started = time.monotonic()
    with pytest.raises(SlowBodyError):
        asyncio.run(_post_trickle(app, b"x", every=0.1, count=30))
    assert time.monotonic() - started < 1.5


def test_a_body_that_stops_is_cut_off_after_the_timeout() -> None:
    app = BodyTimeouts(_echo_length, timeout=0.3, min_rate=1)
    started = time.monotonic()
    with pytest.raises(SlowBodyError):
        asyncio.run(_post_trickle(app, b"x" * 1000, every=1.0, count=2))
    assert time.monotonic() - started < 1.0


def test_a_body_at_a_decent_rate_is_not_cut_off() -> None:
    # 1000 bytes every 0.1 s = 10 kB/s, well above 100 bytes/s, for 1.5 s in all: more than the
    # timeout, and the app then works 0.5 s after the body, which is not counted.
    app = BodyTimeouts(_echo_length, timeout=0.3, min_rate=100)
    got = asyncio.run(_post_trickle(app, b"x" * 1000, every=0.1, count=15))
    assert got.status_code == 200
    assert got.text == "15000"
