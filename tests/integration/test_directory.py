"""The directory a sender picks recipients from (`GET /api/v1/directory`), on a real server:
accounts that can receive, found by part of their email, without wildcards, and never for a
token that may not send."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.conftest import Server, User, bearer, make_user


def _found(server: Server, headers: dict[str, str], q: str, **params: int) -> httpx.Response:
    return httpx.get(
        f"{server.url}/api/v1/directory", params={"q": q, **params}, headers=headers, timeout=30
    )


def test_accounts_that_can_receive_are_found_by_part_of_their_email(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    make_user(sqlite_server, tmp_path, "ars-veille")
    make_user(sqlite_server, tmp_path, "ars-labo")
    make_user(sqlite_server, tmp_path, "ars-nokeys", keys=False)  # cannot receive yet
    make_user(sqlite_server, tmp_path, "ars-gone")
    assert sqlite_server.admin("disable-user", "ars-gone@example.org").returncode == 0

    answer = _found(sqlite_server, bearer(alice), "ARS-")
    assert answer.status_code == 200
    account = {"kind": "user", "name": None, "title": None, "devices": 1, "members": None}
    assert answer.json() == [
        account | {"email": "ars-labo@example.org"},
        account | {"email": "ars-veille@example.org"},
    ]
    assert [e["email"] for e in _found(sqlite_server, bearer(alice), "veille").json()] == [
        "ars-veille@example.org"
    ]
    assert len(_found(sqlite_server, bearer(alice), "ars", limit=1).json()) == 1
    # LIKE's wildcards are plain characters here: "%" finds no one, "_" only an underscore
    assert _found(sqlite_server, bearer(alice), "%%").json() == []
    assert _found(sqlite_server, bearer(alice), "a_s").json() == []


def test_what_the_directory_refuses(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    assert _found(sqlite_server, {}, "alice").status_code == 401
    for q, params in (("a", {}), ("x" * 255, {}), ("alice", {"limit": 0}), ("al", {"limit": 51})):
        refused = _found(sqlite_server, bearer(alice), q, **params)
        assert refused.status_code == 422, (q, params)
        assert refused.headers["content-type"] == "application/problem+json"
    made = httpx.post(
        f"{sqlite_server.url}/api/v1/tokens",
        json={"name": "inbox robot", "scopes": ["receive"]},
        headers=bearer(alice),
        timeout=30,
    )
    receive_only = {"authorization": f"Bearer {made.json()['token']}"}
    refused = _found(sqlite_server, receive_only, "alice")
    assert refused.status_code == 403
    assert "send" in refused.json()["detail"]


def test_pli_directory_search_shows_fingerprints_and_trust(
    sqlite_server: Server, tmp_path: Path
) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    veille = make_user(sqlite_server, tmp_path, "ars-veille")
    labo = make_user(sqlite_server, tmp_path, "ars-labo")
    made = sqlite_server.admin("create-service", "ars-robot@example.org", "--scope", "receive")
    assert made.returncode == 0, made.stderr
    robot = User("ars-robot@example.org", tmp_path / "home-robot", sqlite_server)
    robot.extra_env["PLI_TOKEN"] = made.stdout.strip()
    robot.ok("login", sqlite_server.url, "--email", robot.email, "--token")
    robot.ok("keys", "init")
    source = tmp_path / "a.csv"
    source.write_bytes(b"a")
    alice.send(source, to=labo.email)  # alice pins labo's keys

    found = alice.ok("directory", "search", "ars", "--json").json()
    prints = {u.email: u.ok("keys", "show", "--json").json()["fingerprint"] for u in (veille, labo)}
    assert [(e["email"], e["kind"], e["pinned"], e["verified"]) for e in found] == [
        ("ars-labo@example.org", "user", True, False),
        ("ars-robot@example.org", "service", False, False),
        ("ars-veille@example.org", "user", False, False),
    ]
    assert found[0]["devices"][0]["fingerprint"] == prints[labo.email]
    text = alice.ok("directory", "search", "veille").stdout
    assert "ars-veille@example.org  not pinned yet" in text
    assert prints[veille.email] in text
    assert not (alice.home / "pins.json").read_text().count("ars-veille")  # looked, not pinned
    nobody = alice.ok("directory", "search", "zz")
    assert "nothing matches 'zz'" in nobody.stderr
    short = alice.run("directory", "search", "a")
    assert short.returncode == 2
    assert "at least two characters" in short.stderr
