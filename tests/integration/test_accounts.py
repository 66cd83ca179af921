"""Account security through the real CLI: sessions, passwords, disabled accounts, API tokens."""

from __future__ import annotations

import base64
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pli.client.sdk import Client
from pli.crypto.identity import DeviceIdentity
from pli.errors import PliError
from tests.integration.conftest import Server, User, make_user, running_server

NEW_PASSWORD = "another long passphrase 2026"


def _second_device(user: User, tmp_path: Path) -> User:
    other = User(user.email, tmp_path / f"second-{user.email}", user.server)
    other.ok("login", user.server.url, "--email", user.email)
    return other


def test_logout_all_closes_every_session(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice", keys=False)
    laptop = _second_device(alice, tmp_path)
    assert "2 sessions closed" in alice.ok("logout", "--all").stderr
    refused = laptop.run("token", "list")
    assert refused.returncode == 1
    assert "session has expired or is invalid" in refused.stderr


def test_password_change(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice", keys=False)
    laptop = _second_device(alice, tmp_path)
    alice.extra_env["PLI_NEW_PASSWORD"] = "password1234"
    common = alice.run("passwd")
    assert (common.returncode, "most commonly used" in common.stderr) == (2, True)
    alice.extra_env["PLI_NEW_PASSWORD"] = NEW_PASSWORD
    alice.ok("passwd")
    alice.ok("token", "list")  # this session goes on
    assert laptop.run("token", "list").returncode == 1  # the other one was closed
    stale = laptop.run("login", sqlite_server.url, "--email", alice.email)
    assert stale.stderr.strip() == "error: wrong email or password"
    laptop.extra_env["PLI_PASSWORD"] = NEW_PASSWORD
    laptop.ok("login", sqlite_server.url, "--email", alice.email)


def test_a_disabled_account_can_do_nothing_until_enabled(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    token = alice.ok("token", "create", "--scope", "receive").stdout.strip()
    assert sqlite_server.admin("disable-user", alice.email).returncode == 0
    assert alice.run("token", "list").returncode == 1
    login = alice.run("login", sqlite_server.url, "--email", alice.email)
    assert login.stderr.strip() == "error: this account is disabled: ask an administrator"
    automation = User(alice.email, alice.home, sqlite_server, {"PLI_TOKEN": token})
    assert "disabled" in automation.run("inbox", "--json").stderr
    assert sqlite_server.admin("enable-user", alice.email).returncode == 0
    alice.ok("login", sqlite_server.url, "--email", alice.email)
    assert automation.ok("inbox", "--json").json() == []


def test_api_tokens_are_scoped_shown_once_and_stored_as_hmacs(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    bob = make_user(sqlite_server, tmp_path, "bob")
    made = alice.ok("token", "create", "--scope", "send", "--name", "nightly export", "--json")
    token = made.json()["token"]
    assert token.startswith("plit_")
    listed = alice.ok("token", "list", "--json").json()
    assert [t["name"] for t in listed] == ["nightly export"]
    assert "token" not in listed[0]
    data = b"".join(p.read_bytes() for p in sqlite_server.data.glob("pli.db*"))
    assert token.encode() not in data

    job = User(alice.email, alice.home, sqlite_server, {"PLI_TOKEN": token})
    source = tmp_path / "export.csv"
    source.write_bytes(b"nightly")
    job.ok("send", str(source), "--to", bob.email)
    receive = job.run("inbox", "--json")
    assert receive.returncode == 1
    assert "does not allow 'receive'" in receive.stderr
    minting = job.run("token", "create", "--scope", "send")
    assert "needs a login session" in minting.stderr
    admin = alice.run("token", "create", "--scope", "admin")
    assert "only administrators" in admin.stderr

    alice.ok("token", "revoke", listed[0]["id"])
    revoked = job.run("send", str(source), "--to", bob.email)
    assert "invalid or has expired" in revoked.stderr


@pytest.fixture
def brief_sessions(tmp_path: Path) -> Iterator[Server]:
    with running_server(tmp_path, {"PLI_SESSION_IDLE": "2s", "PLI_SESSION_TTL": "4s"}) as server:
        yield server


def test_sessions_end_when_idle_and_at_their_absolute_limit(
    brief_sessions: Server, tmp_path: Path
) -> None:
    alice = make_user(brief_sessions, tmp_path, "alice", keys=False)
    time.sleep(2.5)
    idle = alice.run("token", "list")
    assert (idle.returncode, "expired" in idle.stderr) == (1, True)
    alice.ok("login", brief_sessions.url, "--email", alice.email)
    for _ in range(4):  # kept busy, it still ends at the absolute limit
        time.sleep(1.1)
        if alice.run("token", "list").returncode != 0:
            break
    else:
        pytest.fail("a busy session outlived its absolute limit")
    with sqlite3.connect(brief_sessions.data / "pli.db") as db:
        assert db.execute("SELECT count(*) FROM sessions").fetchone() == (0,)


def test_passphrase_change_rewraps_the_keys(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    before = alice.ok("keys", "export-identity").stdout
    alice.extra_env["PLI_NEW_PASSPHRASE"] = "a brand new device passphrase"
    assert alice.ok("keys", "passphrase").stderr.strip() == "passphrase changed"
    old = alice.run("keys", "export-identity")
    assert (old.returncode, old.stderr.strip()) == (
        1,
        "error: wrong passphrase for this device's keys",
    )
    alice.extra_env["PLI_PASSPHRASE"] = "a brand new device passphrase"
    assert alice.ok("keys", "export-identity").stdout == before


def test_passphrase_change_rewraps_the_escrowed_copy(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice", keys=False)
    alice.extra_env["PLI_KDF_WORK_FACTOR"] = "18"
    first = alice.ok("keys", "init", "--escrow", "--generate").stderr.splitlines()[1].strip()
    alice.extra_env["PLI_PASSPHRASE"] = first
    changed = alice.ok("keys", "passphrase", "--generate").stderr.splitlines()
    second = changed[1].strip()
    assert changed[-1] == "passphrase changed, here and in the escrowed copy"
    client = Client(home_path=alice.home)
    try:
        (escrow,) = client.api.request("GET", "/api/v1/me/escrow")
    finally:
        client.close()
    sealed = base64.b64decode(escrow["escrow"])
    assert DeviceIdentity.unseal(sealed, second).device == escrow["device"]
    with pytest.raises(PliError):
        DeviceIdentity.unseal(sealed, first)
