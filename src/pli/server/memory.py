"""How the server's C allocator hands memory back to the system.

glibc serves a block of 128 KiB or more with a mapping of its own, returned when freed; but the
first such block freed raises that threshold to its size (up to 32 MiB), and every later block
under it is then carved from the heap of the thread that asked, where it stays once freed. Each
login's argon2 hash (19 MiB) would so keep 19 MiB resident per worker thread that ever checked a
password, for the life of the process.

So the threshold is fixed at 16 MiB: the hash's block is mapped on its own again, while the
transfer paths' buffers (1 to 8 MiB, reused from request to request) stay in the heaps; with a
low threshold they would be mapped afresh, and faulted in again, on every request. And the
worker threads share two heaps rather than up to sixteen (glibc's default on two cores), each
keeping its own free blocks. Other C libraries keep their own policy.

What the heaps keep free between requests (a transfer's buffers, up to the threshold at each
heap's top, and the holes below it) is handed back once the server has been quiet for a moment
after some work (`Quiet`): a busy server reuses it, an idle one does not sit on it.
"""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

# glibc's mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

MMAP_THRESHOLD = 16 << 20
# What a heap keeps free at its top before giving it back: glibc's own rule, twice the threshold.
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
ARENAS = 2


def hand_back_large_blocks() -> bool:
    """Set the policy, before the server's threads start; False where the C library is not
    glibc (or refused a setting)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_ARENA_MAX, ARENAS),
    )
    accepted = [mallopt(name, value) for name, value in settings]  # every one, whatever fails
    return all(accepted)


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_free_memory() -> bool:
    """Hand every heap's free pages back to the system; False where the C library is not glibc."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class Quiet:
    """Counts the HTTP requests in flight (through `CountRequests`); `run` releases the
    heaps' free memory once no request has been in flight for `after` seconds since the last
    one ended, and only after work: an idle server is not woken up to release nothing."""

    def __init__(self, after: float = 1.0, release: Callable[[], bool] = release_free_memory):
        self.after, self._release = after, release
        self.in_flight = 0
        self.worked = False  # a request ended since the last release
        self._ended = time.monotonic()

    def begin(self) -> None:
        self.in_flight += 1

    def end(self) -> None:
        self.in_flight -= 1
        self.worked = True
        self._ended = time.monotonic()

    def due(self) -> bool:
        quiet_for = time.monotonic() - self._ended
        return self.worked and self.in_flight == 0 and quiet_for >= self.after

    async def run(self) -> None:
        """Runs for the server's life (cancelled at shutdown)."""
        while True:
            await asyncio.sleep(self.after / 2)
            if self.due():
                self.worked = False
                await run_in_threadpool(self._release)


class CountRequests:
    """Plain ASGI middleware: each HTTP request is in flight until its response is sent."""

    def __init__(self, app: ASGIApp, quiet: Quiet) -> None:
        self.app, self.quiet = app, quiet

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.quiet.begin()
        try:
            await self.app(scope, receive, send)
        finally:
            self.quiet.end()
