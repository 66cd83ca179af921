"""The allocator policy `pli serve` sets: a login's argon2 memory is handed back, not kept;
what a transfer's buffers leave free in the heaps is handed back once the server is quiet."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message

from pli.server import memory

# In a fresh interpreter, so that the policy is set (or not) before any large block is freed.
# A 30 MiB block freed first raises glibc's own threshold, as the server's buffers do; then a
# worker thread checks a password with the server's argon2 parameters.
_PROBE = """
import sys, threading
from pli.server import memory
if sys.argv[1] == "policy":
    assert memory.hand_back_large_blocks()
from argon2 import PasswordHasher
hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
stored = hasher.hash("a password")
del stored
block = bytearray(30 << 20)
del block

def anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

def check():
    try:
        hasher.verify(hasher.hash("x"), "y")
    except Exception:
        pass

before = anon_kib()
for _ in range(3):
    worker = threading.Thread(target=check)
    worker.start()
    worker.join()
print(anon_kib() - before)
"""


def _probe_kib(probe: str, mode: str) -> int:
    """What a probe prints, run in a fresh interpreter in the given mode."""
    done = subprocess.run(
        [sys.executable, "-c", probe, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


def _growth_kib(mode: str) -> int:
    return _probe_kib(_PROBE, mode)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_password_check_leaves_no_memory_behind() -> None:
    assert _growth_kib("policy") < 4 * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_without_the_policy_the_memory_stays() -> None:
    """The probe itself can see the difference: glibc keeps the 19 MiB in the thread's heap."""
    assert _growth_kib("default") > 15 * 1024


# Buffers of a transfer's size (under the policy's 16 MiB threshold, so carved from the heap)
# freed while a later small block still holds the heap's top: glibc keeps their pages.
_FREED_PROBE = """
import sys
from pli.server import memory
assert memory.hand_back_large_blocks()
buffers = [bytearray(1 << 20) for _ in range(24)]
top = [bytearray(1024) for _ in range(64)]

def anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

before = anon_kib()
del buffers
if sys.argv[1] == "release":
    assert memory.release_free_memory()
print(before - anon_kib())
"""


def _freed_kib(mode: str) -> int:
    return _probe_kib(_FREED_PROBE, mode)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_released_buffers_leave_the_process() -> None:
    assert _freed_kib("release") > 20 * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_without_a_release_freed_buffers_stay() -> None:
    """The probe itself can see the difference: freed, the buffers' pages stay in the heap."""
    assert _freed_kib("keep") < 4 * 1024


QUIET = 0.05  # seconds


class _Releases:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> bool:
        self.count += 1
        return True


def _app(quiet: memory.Quiet, streaming: asyncio.Event) -> Starlette:
    async def small(_request: Request) -> Response:
        return PlainTextResponse("ok")

    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        await streaming.wait()  # the response is still being sent
        yield b"last"

    async def large(_request: Request) -> Response:
        return StreamingResponse(body())

    app = Starlette(routes=[Route("/small", small), Route("/large", large)])
    app.add_middleware(memory.CountRequests, quiet=quiet)
    return app


async def _settle() -> None:
    await asyncio.sleep(QUIET * 6)


async def _request(app: Starlette, path: str, sent: list[Message]) -> None:
    """One HTTP request straight through the ASGI interface: `sent` sees each message as the
    app sends it (httpx's in-process transport would hand back the response only once whole)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }

    requested, done = False, asyncio.Event()

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays until the whole response has come
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            done.set()

    await app(scope, receive, send)


def _bodies(sent: list[Message]) -> list[bytes]:
    return [m["body"] for m in sent if m["type"] == "http.response.body" and m["body"]]


async def _scenario() -> list[int]:
    """Release counts: at start, during a long response, after it, after more quiet, and
    after one more request."""
    releases, streaming = _Releases(), asyncio.Event()
    quiet = memory.Quiet(after=QUIET, release=releases)
    app = _app(quiet, streaming)
    task = asyncio.create_task(quiet.run())
    counts = []
    await _settle()
    counts.append(releases.count)
    sent: list[Message] = []
    large = asyncio.create_task(_request(app, "/large", sent))
    await _settle()
    assert _bodies(sent) == [b"first"]
    counts.append(releases.count)
    streaming.set()
    await large
    assert _bodies(sent) == [b"first", b"last"]
    await _settle()
    counts.append(releases.count)
    await _settle()
    counts.append(releases.count)
    small: list[Message] = []
    await _request(app, "/small", small)
    assert _bodies(small) == [b"ok"]
    await _settle()
    counts.append(releases.count)
    task.cancel()
    return counts


def test_memory_is_released_once_after_work_when_quiet() -> None:
    # Nothing while idle from the start or while a response is still being sent; once after
    # it ends; nothing more until another request has come and gone.
    assert asyncio.run(_scenario()) == [0, 0, 1, 1, 2]
