"""The login guard's arithmetic, on in-process counters."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pli.errors import RateLimitedError
from pli.server.ratelimit import LoginGuard, LoginPolicy, MemoryCounters

POLICY = LoginPolicy(
    max_failures=3,
    refuse_after=5,
    account_slow_after=6,
    window=timedelta(minutes=15),
    max_delay=5.0,
)


def test_delays_grow_then_attempts_are_refused() -> None:
    guard = LoginGuard(MemoryCounters(), POLICY)
    delays = []
    for _ in range(5):
        delays.append(guard.before("a@example.org", "192.0.2.1"))
        guard.failed("A@example.org", "192.0.2.1")
    assert delays == [0.0, 0.0, 0.0, 1.0, 2.0]
    with pytest.raises(RateLimitedError):
        guard.before("a@example.org", "192.0.2.1")
    assert guard.before("a@example.org", "192.0.2.2") == 0.0  # another address


def test_a_success_clears_the_address_but_not_the_account() -> None:
    guard = LoginGuard(MemoryCounters(), POLICY)
    for n in range(6):
        guard.failed("a@example.org", f"192.0.2.{n % 2}")
    guard.succeeded("a@example.org", "192.0.2.0")
    # The account as a whole is under attack: slowed from every address, never refused.
    assert guard.before("a@example.org", "192.0.2.0") == 1.0
    assert guard.before("a@example.org", "198.51.100.7") == 1.0


def test_counters_forget_outside_the_window() -> None:
    counters = MemoryCounters()
    counters.add("k", now=1000.0, window=60)
    counters.add("k", now=1030.0, window=60)
    assert counters.count("k", now=1059.0, window=60) == 2
    assert counters.count("k", now=1061.0, window=60) == 1
    counters.clear("k")
    assert counters.count("k", now=1061.0, window=60) == 0
