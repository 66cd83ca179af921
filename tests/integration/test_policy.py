"""The administrator's policy, set with `pli admin policy set` on a real server and refused on
every path that reaches it: the CLI's verbs, the API under them, and the admin API itself."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.integration.conftest import TUS, Server, User, bearer, make_user, upload_metadata
from tests.integration.test_links import _outsider

LINKS_OFF = "error: share links are turned off on this server by its administrator"
REQUESTS_OFF = "error: file requests are turned off on this server by its administrator"


def _policy(server: Server, *changes: str) -> dict[str, dict[str, object]]:
    """Apply `changes` (none: only show) and return every setting by name."""
    done = server.admin("policy", *(("set", *changes) if changes else ("show",)), "--json")
    assert done.returncode == 0, done.stderr
    return {row["name"]: row for row in json.loads(done.stdout)}


def _refused(user: User, *args: str) -> str:
    """The one error line a refused command prints (beside notes such as a first use of
    keys); it must exit non-zero without a traceback."""
    result = user.run(*args)
    assert result.returncode != 0, f"pli {' '.join(args)} was not refused"
    lines = [x for x in result.stderr.strip().splitlines() if not x.startswith("note: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _file(tmp_path: Path, name: str, size: int) -> Path:
    path = tmp_path / name
    path.write_bytes(os.urandom(size))
    return path


def _policy_changes(server: Server) -> list[tuple[str, str, str]]:
    with sqlite3.connect(server.data / "pli.db") as db:
        rows = db.execute(
            "SELECT subject, actor, details FROM audit_log WHERE event = 'policy.changed' "
            "ORDER BY seq"
        ).fetchall()
    return [(subject, actor, details) for subject, actor, details in rows]


def test_expiry_limits_and_default(sqlite_server: Server, tmp_path: Path) -> None:
    alice, bob = (
        make_user(sqlite_server, tmp_path, "alice"),
        make_user(sqlite_server, tmp_path, "bob"),
    )
    shown = _policy(sqlite_server, "max_expiry=2d", "default_expiry=1d")
    assert (shown["max_expiry"]["value"], shown["max_expiry"]["overridden"]) == ("2d", True)
    assert (
        shown["delete_after_download"]["value"],
        shown["delete_after_download"]["overridden"],
    ) == (
        "false",
        False,
    )
    source = _file(tmp_path, "bilan.txt", 100)
    above = "error: the expiry is above this server's maximum of 2d"
    assert _refused(alice, "send", str(source), "--to", bob.email, "--expires", "3d") == above
    assert _refused(alice, "link", "create", str(source), "--expires", "3d") == above
    assert _refused(bob, "request", "create", "--title", "t", "--expires", "3d") == above
    alice.send(source, to=bob.email)
    sent = alice.ok("outbox", "--json").json()[0]
    expires = datetime.fromisoformat(sent["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=1))) < timedelta(minutes=5)
    # default_expiry above max_expiry cannot be set, and nothing of a refused change is kept.
    refused = sqlite_server.admin("policy", "set", "max_expiry=12h", "user_quota=1G")
    assert refused.returncode != 0
    assert refused.stderr.strip() == "error: default_expiry cannot be above max_expiry"
    assert _policy(sqlite_server)["user_quota"]["value"] == "none"
    # Each change is in the audit log, with who made it and what it was before.
    changes = _policy_changes(sqlite_server)
    assert [(s, a.startswith("local:")) for s, a, _ in changes] == [
        ("max_expiry", True),
        ("default_expiry", True),
    ]
    assert changes[0][2] == '{"from":"30d","to":"2d"}'


def test_size_limits_and_quota(sqlite_server: Server, tmp_path: Path) -> None:
    alice, bob = (
        make_user(sqlite_server, tmp_path, "alice"),
        make_user(sqlite_server, tmp_path, "bob"),
    )
    _policy(sqlite_server, "max_file_size=2K", "max_transfer_size=4K")
    small = [_file(tmp_path, f"part{i}.bin", 1500) for i in range(3)]
    big = _file(tmp_path, "big.bin", 3000)
    line = _refused(alice, "send", str(big), "--to", bob.email)
    assert line == "error: the file is larger than this server accepts (2K)"
    assert _refused(alice, "link", "create", str(big)).startswith("error: the file is larger")
    alice.send(*small[:2], to=bob.email)
    line = _refused(alice, "send", *map(str, small), "--to", bob.email)
    assert line.startswith("error: this transfer would be larger than this server accepts (4K)")
    # Someone answering a file request is held to the same sizes.
    asked = bob.ok("request", "create", "--title", "t", "--json").json()
    stranger = _outsider(sqlite_server, tmp_path)
    assert _refused(stranger, "request", "send", asked["url"], str(big)).startswith(
        "error: the file is larger"
    )
    # The tus endpoint says the maximum, and refuses an upload above it (413).
    assert httpx.options(f"{sqlite_server.url}/api/v1/uploads").headers["tus-max-size"] == "2048"
    transfer = httpx.post(
        f"{sqlite_server.url}/api/v1/transfers",
        json={"recipients": [bob.email], "files": 1},
        headers=bearer(alice),
    ).json()
    meta = upload_metadata(transfer["id"], transfer["files"][0]["id"])
    headers = {**bearer(alice), **TUS, "upload-length": "2049", "upload-metadata": meta}
    assert httpx.post(f"{sqlite_server.url}/api/v1/uploads", headers=headers).status_code == 413

    _policy(sqlite_server, "user_quota=4K")
    carol = make_user(sqlite_server, tmp_path, "carol")
    first = carol.send(small[0], to=bob.email)
    carol.send(small[1], to=bob.email)
    line = _refused(carol, "send", str(small[2]), "--to", bob.email)
    assert line.startswith("error: your storage quota (4K) would be exceeded")
    carol.ok("revoke", first)  # a revoked transfer's files are gone: its room comes back
    carol.send(small[2], to=bob.email)
    # Answers to a file request are stored for its owner: they count against the owner's quota.
    _policy(sqlite_server, "user_quota=3K")
    dave = make_user(sqlite_server, tmp_path, "dave")
    asked = dave.ok("request", "create", "--title", "t", "--json").json()
    stranger.ok("request", "send", asked["url"], str(small[0]))
    line = _refused(stranger, "request", "send", asked["url"], str(small[1]))
    assert line.startswith("error: the person who asked for these files has no room left")
    line = _refused(dave, "send", str(small[2]), "--to", bob.email)
    assert line.startswith("error: your storage quota (3K) would be exceeded")


def test_links_and_requests_can_be_turned_off(sqlite_server: Server, tmp_path: Path) -> None:
    alice, bob = (
        make_user(sqlite_server, tmp_path, "alice"),
        make_user(sqlite_server, tmp_path, "bob"),
    )
    source = _file(tmp_path, "bilan.txt", 100)
    link = alice.ok("link", "create", str(source), "--json").json()
    asked = bob.ok("request", "create", "--title", "t", "--json").json()
    stranger = _outsider(sqlite_server, tmp_path)
    _policy(sqlite_server, "links_allowed=false", "requests_allowed=false")

    assert _refused(alice, "link", "create", str(source)) == LINKS_OFF
    assert _refused(stranger, "link", "get", link["url"], "-o", str(tmp_path / "o")) == LINKS_OFF
    assert _refused(bob, "request", "create", "--title", "t") == REQUESTS_OFF
    assert _refused(stranger, "request", "send", asked["url"], str(source)) == REQUESTS_OFF

    _policy(sqlite_server, "links_allowed=default", "requests_allowed=true")
    stranger.ok("link", "get", link["url"], "-o", str(tmp_path / "o"))
    stranger.ok("request", "send", asked["url"], str(source))


def test_a_second_factor_can_be_required(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    _policy(sqlite_server, "require_2fa=true")
    line = _refused(alice, "inbox")
    assert line == "error: this server requires a second factor: run `pli 2fa enable` first"
    # The admin API applies the same policy, and changes it the same way.
    admin = make_user(sqlite_server, tmp_path, "root", keys=False, admin=True)
    listed = httpx.get(f"{sqlite_server.url}/api/v1/admin/policy", headers=bearer(admin))
    assert listed.status_code == 403  # the administrator has no second factor either
    _policy(sqlite_server, "require_2fa=false")
    changed = httpx.patch(
        f"{sqlite_server.url}/api/v1/admin/policy",
        json={"changes": {"max_expiry": "90d", "default_expiry": "2d"}},
        headers=bearer(admin),
    )
    assert changed.status_code == 200, changed.text
    values = {row["name"]: row["value"] for row in changed.json()}
    assert (values["max_expiry"], values["default_expiry"]) == ("90d", "2d")
    wrong = httpx.patch(
        f"{sqlite_server.url}/api/v1/admin/policy",
        json={"changes": {"max_expiry": "forever"}},
        headers=bearer(admin),
    )
    assert wrong.status_code == 400
    assert "max_expiry: invalid duration 'forever'" in wrong.json()["detail"]
    assert _policy_changes(sqlite_server)[-2][1] == admin.email
