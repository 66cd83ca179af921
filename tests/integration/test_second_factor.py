"""TOTP second factor: enrolment, login with PLI_TOTP, replay refusal, recovery codes, and
the policy that requires a second factor of every account."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest

from pli.client.sdk import Client
from pli.errors import AuthError
from tests.integration.conftest import Server, User, make_user, running_server


def _enrol(user: User) -> tuple[pyotp.TOTP, list[str]]:
    client = Client(home_path=user.home)
    try:
        enrolment = client.enable_totp()
        assert enrolment["uri"].startswith("otpauth://totp/pli:")
        totp = pyotp.TOTP(enrolment["secret"])
        with pytest.raises(AuthError):
            client.confirm_totp("000000" if totp.now() != "000000" else "111111")
        return totp, client.confirm_totp(totp.now())
    finally:
        client.close()


def _login(user: User, code: str | None) -> tuple[int, str]:
    user.extra_env.pop("PLI_TOTP", None)
    if code is not None:
        user.extra_env["PLI_TOTP"] = code
    result = user.run("login", user.server.url, "--email", user.email)
    return result.returncode, result.stderr.strip()


def test_totp_login_replay_and_recovery_codes(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice", keys=False)
    totp, recovery = _enrol(alice)
    assert len(recovery) == 10
    assert len(set(recovery)) == 10

    assert _login(alice, None) == (1, "error: this account needs a one-time code (set PLI_TOTP)")
    assert _login(alice, "123456")[1] == "error: wrong one-time code"
    # The enrolment code's time step is spent; the next step's code is within the drift window.
    upcoming = totp.at(time.time() + 30)
    assert _login(alice, upcoming) == (0, f"logged in as {alice.email}")
    returncode, message = _login(alice, upcoming)
    assert (returncode, "already used" in message) == (1, True)
    assert _login(alice, recovery[0].lower())[0] == 0
    assert _login(alice, recovery[0]) == (1, "error: wrong one-time code")

    client = Client(home_path=alice.home)
    try:
        client.disable_totp(recovery[1])
    finally:
        client.close()
    assert _login(alice, None)[0] == 0


@pytest.fixture
def strict(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path, {"PLI_REQUIRE_2FA": "1"}) as server:
        yield server


def test_the_policy_requires_a_second_factor_before_anything_else(
    strict: Server, tmp_path: Path
) -> None:
    alice = make_user(strict, tmp_path, "alice", keys=False)
    blocked = alice.run("keys", "init")
    assert blocked.returncode == 1
    assert "requires a second factor" in blocked.stderr
    totp, _ = _enrol(alice)
    assert _login(alice, totp.at(time.time() + 30))[0] == 0
    alice.ok("keys", "init")
