"""Brute force against logins: delayed, then refused, per account and client address; an
account under a spread-out attack only slows down; no header spoofs the client address."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import PASSWORD, Server, running_server, start_server, stop_server

LIMITS = {"PLI_LOGIN_MAX_FAILURES": "3", "PLI_LOGIN_REFUSE_AFTER": "5"}


def _login(
    server: Server,
    email: str,
    password: str,
    *,
    source: str = "127.0.0.1",
    headers: dict[str, str] | None = None,
) -> tuple[int, float, str]:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=30) as http:
        start = time.monotonic()
        answer = http.post(
            f"{server.url}/api/v1/auth/login",
            json={"email": email, "password": password},
            headers=headers or {},
        )
        return answer.status_code, time.monotonic() - start, answer.json().get("detail", "")


def _account(server: Server) -> str:
    email = f"target-{secrets.token_hex(4)}@example.org"
    assert server.admin("create-user", email).returncode == 0
    return email


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path, {**LIMITS, "PLI_LOGIN_ACCOUNT_SLOW_AFTER": "100"}) as server:
        yield server


def test_failures_from_one_address_are_delayed_then_refused(guarded: Server) -> None:
    email = _account(guarded)
    fast = [_login(guarded, email, "wrong password!") for _ in range(3)]
    assert [status for status, _, _ in fast] == [401, 401, 401]
    assert max(elapsed for _, elapsed, _ in fast) < 1.0
    slowed = [_login(guarded, email, "wrong password!") for _ in range(2)]
    assert [status for status, _, _ in slowed] == [401, 401]
    assert slowed[0][1] >= 0.9
    assert slowed[1][1] >= 1.9
    # Refused now, the right password included: it is not even checked.
    status, elapsed, detail = _login(guarded, email, PASSWORD)
    assert status == 429
    assert detail == "too many failed logins from this address: try again in 15 minutes"
    assert elapsed < 1.0
    # The owner, from another address, is not locked out.
    assert _login(guarded, email, PASSWORD, source="127.0.0.2")[0] == 200


def test_no_header_spoofs_the_client_address(guarded: Server) -> None:
    email = _account(guarded)
    for n in range(5):
        spoof = {"x-forwarded-for": f"203.0.113.{n}", "x-real-ip": f"198.51.100.{n}"}
        _login(guarded, email, "wrong password!", headers=spoof)
    status, _, _ = _login(guarded, email, PASSWORD, headers={"x-forwarded-for": "192.0.2.77"})
    assert status == 429


def test_a_trusted_proxy_passes_on_the_client_address(tmp_path: Path) -> None:
    server = start_server(tmp_path, None, {**LIMITS, "PLI_TRUSTED_PROXIES": "127.0.0.1/32"})
    try:
        email = _account(server)
        behind = {"x-forwarded-for": "203.0.113.9"}
        for _ in range(5):
            _login(server, email, "wrong password!", headers=behind)
        assert _login(server, email, PASSWORD, headers=behind)[0] == 429
        assert (
            _login(server, email, PASSWORD, headers={"x-forwarded-for": "203.0.113.10"})[0] == 200
        )
        # An untrusted peer's header is ignored: 127.0.0.2 is counted as itself.
        assert _login(server, email, PASSWORD, source="127.0.0.2", headers=behind)[0] == 200
    finally:
        stop_server(server)


def test_an_attack_spread_over_addresses_slows_the_account_but_never_locks_it(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path, None, {**LIMITS, "PLI_LOGIN_ACCOUNT_SLOW_AFTER": "4"})
    try:
        email = _account(server)
        for n in range(2, 8):
            _login(server, email, "wrong password!", source=f"127.0.0.{n}")
        status, elapsed, _ = _login(server, email, PASSWORD, source="127.0.0.20")
        assert status == 200
        assert elapsed >= 1.0
    finally:
        stop_server(server)


def test_counters_are_shared_through_redis(tmp_path: Path) -> None:
    """Two instances on one Redis: failures on one count on the other."""
    env = {**LIMITS, "PLI_REDIS_URL": "redis://127.0.0.1:6379/0"}
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = start_server(tmp_path / "a", None, env)
    second = start_server(tmp_path / "b", None, env)
    try:
        email = f"shared-{secrets.token_hex(4)}@example.org"
        for server in (first, second):
            assert server.admin("create-user", email).returncode == 0
        for n in range(5):
            _login(first if n % 2 else second, email, "wrong password!")
        assert _login(first, email, PASSWORD)[0] == 429
        assert _login(second, email, PASSWORD)[0] == 429
        assert _login(second, email, PASSWORD, source="127.0.0.3")[0] == 200
    finally:
        stop_server(first)
        stop_server(second)
