"""The login guard's and the public rate limit's arithmetic, on in-process counters."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pli.errors import ConfigError, RateLimitedError
from pli.server.config import Settings
from pli.server.ratelimit import LoginGuard, LoginPolicy, MemoryCounters, PublicLimit

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


def test_public_requests_are_limited_per_address_over_a_sliding_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("pli.server.ratelimit.time.time", lambda: clock[0])
    limit = PublicLimit(MemoryCounters(), per_minute=2)
    limit.check("192.0.2.1")
    clock[0] += 30
    limit.check("192.0.2.1")
    with pytest.raises(RateLimitedError) as refused:
        limit.check("192.0.2.1")
    assert refused.value.retry_after == 60
    limit.check("192.0.2.2")  # another address
    clock[0] += 31  # the first request has left the window; the refused one counts still
    with pytest.raises(RateLimitedError):
        limit.check("192.0.2.1")
    clock[0] += 30  # only the refusal just above is left in the window
    limit.check("192.0.2.1")


def test_counters_in_process_forget_the_keys_that_went_quiet() -> None:
    counters = MemoryCounters()
    for n in range(MemoryCounters.SWEEP_EVERY - 1):
        counters.add(f"address {n}", now=1000.0, window=60)
    assert counters.count("never seen", now=1000.0, window=60) == 0
    assert len(counters) == MemoryCounters.SWEEP_EVERY - 1  # looking adds nothing
    counters.add("a late one", now=1061.0, window=60)  # the sweep runs, past everyone's window
    assert len(counters) == 1
    assert counters.count("a late one", now=1061.0, window=60) == 1


def test_settings_read_the_public_url_and_rate_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLI_PUBLIC_URL", "https://files.example.org/pli/")
    monkeypatch.setenv("PLI_PUBLIC_RATE_LIMIT", "120")
    settings = Settings.from_env(Path("/nonexistent"))
    assert (settings.public_url, settings.public_rate_limit) == (
        "https://files.example.org/pli",
        120,
    )
    for wrong in ("files.example.org", "ftp://files.example.org", "https://x.org/?a=1"):
        monkeypatch.setenv("PLI_PUBLIC_URL", wrong)
        with pytest.raises(ConfigError):
            Settings.from_env(Path("/nonexistent"))
    monkeypatch.delenv("PLI_PUBLIC_URL")
    monkeypatch.delenv("PLI_PUBLIC_RATE_LIMIT")
    settings = Settings.from_env(Path("/nonexistent"))
    assert (settings.public_url, settings.public_rate_limit) == (None, 60)
