"""`pli admin exposure` against a real server: a scripted history of real CLI users (send, get,
a share link opened without an account, logins that succeed and fail), then the breach report
lists exactly those transfers, accesses and logins, in JSON and as a draft. The report's
queries run on both backends in tests/unit/server/test_exposure.py."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.integration.conftest import PLI, Server, User, make_user

LOOPBACK = "127.0.0.1"


def _window() -> tuple[str, str]:
    now = datetime.now(UTC)
    return (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()


def _exposure(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return server.admin("exposure", *args)


def _history(server: Server, tmp_path: Path) -> dict[str, str]:
    """alice sends to bob, who gets it; alice shares a link an outsider opens; bob logs in
    again; a wrong password for bob and an unknown account fail (spoken to the API directly:
    what a failed login records does not depend on the client)."""
    alice, bob = make_user(server, tmp_path, "alice"), make_user(server, tmp_path, "bob")
    report = tmp_path / "résultats.csv"
    report.write_text("nom;nir;resultat\nDUPONT;185057800608436;POSITIF\n" * 50)
    sent = alice.send(report, to=bob.email)
    bob.ok("get", sent, "-o", str(tmp_path / "bob-out"))
    link = alice.ok("link", "create", str(report), "--json").json()
    outsider = User("outsider@nowhere.example", tmp_path / "home-outsider", server)
    outsider.ok("link", "get", link["url"], "-o", str(tmp_path / "guest-out"))
    bob.ok("login", server.url, "--email", bob.email)
    for email in (bob.email, "mallory@example.org"):
        refused = httpx.post(
            f"{server.url}/api/v1/auth/login",
            json={"email": email, "password": "not the password at all"},
            timeout=30,
        )
        assert refused.status_code == 401
    return {"alice": alice.email, "bob": bob.email, "sent": sent, "link": link["id"]}


def _rows(items: list[dict[str, Any]], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(item[key] for key in keys) for item in items]


def test_the_report_lists_exactly_what_happened(sqlite_server: Server, tmp_path: Path) -> None:
    server = sqlite_server
    h = _history(server, tmp_path)
    since, until = _window()

    done = _exposure(server, "--since", since, "--until", until, "--format", "json")

    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    alice, bob = h["alice"], h["bob"]
    assert _rows(got["transfers"], "id", "kind", "sender", "recipients", "files", "state") == [
        (h["sent"], "direct", alice, [bob], 1, "sealed"),
        (h["link"], "link", alice, [], 1, "sealed"),
    ]
    assert _rows(got["transfers"], "purged_at", "stored_at_end") == [(None, True), (None, True)]
    assert _rows(got["accesses"], "event", "actor", "subject", "address") == [
        ("transfer.downloaded", bob, h["sent"], LOOPBACK),
        ("transfer.received", bob, h["sent"], LOOPBACK),
        ("link.accessed", "anonymous", h["link"], LOOPBACK),
        ("transfer.downloaded", "anonymous", h["link"], LOOPBACK),
    ]
    # Each file's whole ciphertext was sent, once.
    downloaded = [a for a in got["accesses"] if a["event"] == "transfer.downloaded"]
    sizes = [t["bytes"] for t in got["transfers"]]
    assert _rows(downloaded, "requests", "bytes") == [(1, sizes[0]), (1, sizes[1])]
    assert _rows(got["logins"], "account", "count") == [(alice, 1), (bob, 2)]
    assert [_rows(x["addresses"], "address", "count") for x in got["logins"]] == [
        [(LOOPBACK, 1)],
        [(LOOPBACK, 2)],
    ]
    assert _rows(got["failed_logins"], "address", "account", "count") == [
        (LOOPBACK, None, 1),  # mallory has no account: the log does not name her
        (LOOPBACK, bob, 1),
    ]
    assert got["alerts"] == []
    have = got["server_copy"]["would_have"]
    assert _rows([have], "accounts", "transfers", "password_hashes", "client_addresses") == [
        (2, 2, 2, 1)
    ]
    assert _rows([have], "escrowed_keys", "totp_seeds", "still_stored_transfers") == [(0, 0, 2)]
    assert have["still_stored_bytes"] == sum(sizes)
    assert got["server_copy"]["would_not_have"] == {"devices": 2, "links": 1, "file_requests": 0}

    draft = _exposure(server, "--since", since, "--until", until, "--account", bob)

    assert draft.returncode == 0, draft.stderr
    text = draft.stdout
    assert text.startswith("# Personal data breach: draft notification to the supervisory")
    for heading in ("## 1. Nature of the breach", "## 4. Likely consequences"):
        assert f"\n{heading}\n" in text
    assert f"- Scope: the account {bob}: its transfers and the events about it." in text
    assert "- the email addresses of 2 accounts;" in text  # bob, and alice who sent to him
    assert f"| {h['sent']} | direct | {alice} | {bob} |" in text
    assert h["link"] not in text  # alice's link is not bob's
    assert f"| transfer.received | {bob} | {h['sent']} | {LOOPBACK} | 1 | 0 |" in text
    assert f"| {LOOPBACK} | {bob} | 1 |" in text  # his failed login; not mallory's
    assert "(no such account)" not in text


def test_a_backwards_window_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [PLI, "admin", "exposure", "--since", "2026-11-02", "--until", "2026-11-01"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        cwd=tmp_path,
    )
    assert (done.returncode, done.stderr) == (2, "error: --since must be before --until\n")
    assert list(tmp_path.iterdir()) == []  # no database made on the way
