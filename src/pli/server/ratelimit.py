"""Brute-force protection for logins.

Failures are counted per (account, client address) and per account, over a sliding window.
From one address, after `max_failures` failures further attempts are delayed, and after
`refuse_after` they are refused without the password even being checked, until the failures
age out of the window. Across addresses, an account only ever gets slower, never locked: an
attacker must not be able to lock its owner out. Counters live in Redis when PLI_REDIS_URL is
set (shared by every instance), in process otherwise.

Requests without an account (share links, file requests) are limited per client address by
`PublicLimit`, over the same counters.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from pli.errors import RateLimitedError


class Counters(Protocol):
    def count(self, key: str, now: float, window: float) -> int: ...

    def add(self, key: str, now: float, window: float) -> None: ...

    def clear(self, key: str) -> None: ...


class MemoryCounters:
    """Counters in process. Keys whose events have all left their window are dropped every
    SWEEP_EVERY additions, so that many client addresses do not grow the process for good."""

    SWEEP_EVERY = 4096

    def __init__(self) -> None:
        self._events: dict[str, deque[float]] = {}
        self._windows: dict[str, float] = {}
        self._added = 0
        self._lock = threading.Lock()

    def _live(self, key: str, now: float, window: float) -> deque[float]:
        events = self._events.setdefault(key, deque())
        while events and events[0] <= now - window:
            events.popleft()
        return events

    def count(self, key: str, now: float, window: float) -> int:
        with self._lock:
            if key not in self._events:
                return 0
            return len(self._live(key, now, window))

    def add(self, key: str, now: float, window: float) -> None:
        with self._lock:
            self._live(key, now, window).append(now)
            self._windows[key] = window
            self._added += 1
            if self._added % self.SWEEP_EVERY == 0:
                self._sweep(now)

    def _sweep(self, now: float) -> None:
        stale = [
            key
            for key, events in self._events.items()
            if not events or events[-1] <= now - self._windows.get(key, 0.0)
        ]
        for key in stale:
            del self._events[key]
            self._windows.pop(key, None)

    def clear(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)
            self._windows.pop(key, None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)


class RedisCounters:
    """One sorted set of failure times per key, trimmed to the window, expiring with it."""

    def __init__(self, url: str) -> None:
        import redis  # noqa: PLC0415 - ~20 MiB a server without Redis never loads

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)

    def count(self, key: str, now: float, window: float) -> int:
        pipe = self._redis.pipeline()
        pipe.zremrangebyscore(key, 0, now - window)
        pipe.zcard(key)
        return int(pipe.execute()[1])

    def add(self, key: str, now: float, window: float) -> None:
        pipe = self._redis.pipeline()
        pipe.zadd(key, {f"{now:.6f}:{time.monotonic_ns()}": now})
        pipe.expire(key, int(window) + 1)
        pipe.execute()

    def clear(self, key: str) -> None:
        self._redis.delete(key)


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 10  # per account and address, before attempts are delayed
    refuse_after: int = 20  # per account and address, before attempts are refused
    account_slow_after: int = 50  # per account across addresses, before it slows down
    window: timedelta = timedelta(minutes=15)
    max_delay: float = 5.0


def _key(*parts: str, space: str = "login") -> str:
    # Hashed, so the counter store holds no email or address in clear.
    return f"pli:{space}:" + hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]


class LoginGuard:
    def __init__(self, counters: Counters, policy: LoginPolicy) -> None:
        self._counters = counters
        self._policy = policy
        self._window = policy.window.total_seconds()

    def before(self, email: str, address: str) -> float:
        """Seconds to wait before checking this attempt; raises when it is refused."""
        now, p = time.time(), self._policy
        pair = self._counters.count(_key(email.lower(), address), now, self._window)
        if pair >= p.refuse_after:
            minutes = int(p.window.total_seconds() // 60)
            raise RateLimitedError(
                f"too many failed logins from this address: try again in {minutes} minutes"
            )
        delay = 0.0
        if pair >= p.max_failures:
            delay = min(p.max_delay, 2.0 ** (pair - p.max_failures))
        account = self._counters.count(_key(email.lower()), now, self._window)
        if account >= p.account_slow_after:
            delay = max(delay, min(p.max_delay, 1.0 + (account - p.account_slow_after) / 10))
        return delay

    def failed(self, email: str, address: str) -> None:
        now = time.time()
        self._counters.add(_key(email.lower(), address), now, self._window)
        self._counters.add(_key(email.lower()), now, self._window)

    def succeeded(self, email: str, address: str) -> None:
        self._counters.clear(_key(email.lower(), address))


class PublicLimit:
    """At most `per_minute` requests without an account from one client address in any
    minute (a sliding window). Each request is counted before it is judged, so concurrent ones
    cannot all slip under the limit; refused ones count too, and keep a flood out longer."""

    WINDOW = 60.0

    def __init__(self, counters: Counters, per_minute: int) -> None:
        self._counters = counters
        self._limit = per_minute

    def check(self, address: str) -> None:
        now, key = time.time(), _key(address, space="public")
        self._counters.add(key, now, self.WINDOW)
        if self._counters.count(key, now, self.WINDOW) > self._limit:
            raise RateLimitedError(
                "too many requests from this address: try again in a minute",
                retry_after=int(self.WINDOW),
            )
