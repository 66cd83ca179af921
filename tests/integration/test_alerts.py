"""Alerts about unusual access on a real server: raised from the audit log's last hour, and
suspending downloads only when the policy says so, until an administrator or the account's
own second factor clears them."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import httpx
import pyotp

from tests.integration.conftest import Server, User, bearer, make_user

SUSPENDED = (
    "error: downloads from this account are suspended after unusual activity: clear it with "
    "your second factor (`pli alerts clear`) or ask an administrator"
)


def _alerts(server: Server) -> list[dict[str, object]]:
    listed = server.admin("alerts", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return found


def _events(server: Server, event: str) -> list[tuple[str | None, str]]:
    with sqlite3.connect(server.data / "pli.db") as db:
        rows = db.execute(
            "SELECT subject, details FROM audit_log WHERE event = ? ORDER BY seq", (event,)
        ).fetchall()
    return [(subject, details) for subject, details in rows]


def _two_transfers(alice: User, bob: User, tmp_path: Path) -> list[str]:
    sent = []
    for name in ("a.txt", "b.txt"):
        source = tmp_path / name
        source.write_text(f"résultats {name}\n")
        sent.append(alice.send(source, to=bob.email))
    return sent


def _policy(server: Server, *changes: str) -> None:
    done = server.admin("policy", "set", *changes)
    assert done.returncode == 0, done.stderr


def test_by_default_an_alert_suspends_nothing(sqlite_server: Server, tmp_path: Path) -> None:
    alice, bob = (
        make_user(sqlite_server, tmp_path, "alice"),
        make_user(sqlite_server, tmp_path, "bob"),
    )
    _policy(sqlite_server, "alert_downloads_per_hour=1")
    for transfer in _two_transfers(alice, bob, tmp_path):
        bob.ok("get", transfer, "-o", str(tmp_path / "out"))
    bob.ok("get", transfer, "-o", str(tmp_path / "again"))  # still allowed: alert only
    alerts = _alerts(sqlite_server)
    assert [(a["account"], a["kind"], a["downloads_suspended"]) for a in alerts] == [
        (bob.email, "downloads", False)
    ]
    raised = _events(sqlite_server, "alert.raised")
    assert [(s, json.loads(d)["amount"], json.loads(d)["threshold"]) for s, d in raised] == [
        (bob.email, 2, 1)
    ]  # once per hour, not at every download above the threshold


def test_a_suspension_holds_until_cleared(sqlite_server: Server, tmp_path: Path) -> None:
    alice, bob = (
        make_user(sqlite_server, tmp_path, "alice"),
        make_user(sqlite_server, tmp_path, "bob"),
    )
    _policy(sqlite_server, "alert_downloads_per_hour=1", "alert_action=suspend")
    first, second = _two_transfers(alice, bob, tmp_path)
    bob.ok("get", first, "-o", str(tmp_path / "1"))
    bob.ok("get", second, "-o", str(tmp_path / "2"))  # crosses the threshold: the next is held
    refused = bob.run("get", first, "-o", str(tmp_path / "3"))
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1] == SUSPENDED
    assert sqlite_server.admin("alerts", "clear", bob.email).returncode == 0
    bob.ok("get", first, "-o", str(tmp_path / "4"))
    cleared = _events(sqlite_server, "alert.cleared")
    assert len(cleared) == 1
    assert json.loads(cleared[0][1])["by"] == "administrator"


def test_the_account_clears_its_own_suspension_with_its_second_factor(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice, bob = (
        make_user(sqlite_server, tmp_path, "alice"),
        make_user(sqlite_server, tmp_path, "bob"),
    )
    http = httpx.Client(base_url=sqlite_server.url, headers=bearer(bob), timeout=30)
    seed = http.post("/api/v1/me/2fa/totp").json()["secret"]
    totp = pyotp.TOTP(seed)
    assert http.post("/api/v1/me/2fa/totp/confirm", json={"code": totp.now()}).status_code == 200
    _policy(sqlite_server, "alert_downloads_per_hour=1", "alert_action=suspend")
    first, second = _two_transfers(alice, bob, tmp_path)
    bob.ok("get", first, "-o", str(tmp_path / "1"))
    bob.ok("get", second, "-o", str(tmp_path / "2"))
    assert bob.run("get", first, "-o", str(tmp_path / "3")).returncode != 0
    # A password alone does not lift it: a wrong code is refused.
    wrong = http.post("/api/v1/me/alerts/clear", json={"code": "000000"})
    assert wrong.status_code == 401
    bob.extra_env["PLI_TOTP"] = totp.at(int(time.time()) + 30)  # the code used above is spent
    cleared = bob.ok("alerts", "clear")
    assert "cleared 1 alert(s)" in cleared.stderr
    bob.ok("get", first, "-o", str(tmp_path / "4"))
    http.close()


def test_repeated_failed_decryptions_raise_an_alert(sqlite_server: Server, tmp_path: Path) -> None:
    alice, bob = (
        make_user(sqlite_server, tmp_path, "alice"),
        make_user(sqlite_server, tmp_path, "bob"),
    )
    _policy(sqlite_server, "alert_failed_decryptions_per_hour=1", "alert_action=suspend")
    first, second = _two_transfers(alice, bob, tmp_path)
    for blob in (sqlite_server.data / "blobs").rglob("*"):
        if blob.is_file():
            data = bytearray(blob.read_bytes())
            data[-20] ^= 1  # inside the last STREAM chunk: decryption fails at its tag
            blob.write_bytes(bytes(data))
    for transfer in (first, first, second):  # the same failing transfer counts once
        failed = bob.run("get", transfer, "-o", str(tmp_path / transfer))
        assert failed.returncode != 0
        if transfer == first:
            assert _alerts(sqlite_server) == []
    reports = _events(sqlite_server, "transfer.decrypt_failed")
    assert [s for s, _ in reports] == [first, first, second]
    # Raised, but it suspends nothing even under alert_action=suspend: a sender can make every
    # download of theirs fail, and must not be able to cut their recipient off.
    assert [
        (a["kind"], a["account"], a["downloads_suspended"]) for a in _alerts(sqlite_server)
    ] == [("failed-decryptions", bob.email, False)]
