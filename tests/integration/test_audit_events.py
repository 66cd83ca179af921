"""What a real server records in its audit log as real clients use it: every security-relevant
event, with its actor, subject and client address, in one chain that verifies."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
from sqlalchemy.orm import Session

from pli.audit import log
from pli.audit.chain import Record, verify
from pli.store.db import Database, database_url, make_engine
from tests.integration.conftest import PASSWORD, Server, make_user
from tests.integration.test_links import _outsider


@contextlib.contextmanager
def _database(server: Server) -> Iterator[Session]:
    engine = make_engine(database_url(server.data, server.database_url))
    try:
        with Database(engine).session() as session:
            yield session
    finally:
        engine.dispose()


def _records(server: Server) -> list[Record]:
    with _database(server) as session:
        records = list(log.records(session))
        assert verify(records).ok
        return records


def _seen(records: list[Record]) -> list[tuple[str, str | None, str | None]]:
    return [(str(r.event), r.actor, r.subject) for r in records]


def test_every_step_of_an_exchange_is_recorded(server: Server, tmp_path: Path) -> None:
    alice, bob = make_user(server, tmp_path, "alice"), make_user(server, tmp_path, "bob")
    source = tmp_path / "bilan.txt"
    source.write_text("NGUYEN;279099912301458;NEGATIF\n")
    sent = alice.send(source, to=bob.email)
    bob.ok("get", sent, "-o", str(tmp_path / "out"))
    link = alice.ok("link", "create", str(source), "--max-downloads", "1", "--json").json()
    _outsider(server, tmp_path).ok("link", "get", link["url"], "-o", str(tmp_path / "l"))
    asked = bob.ok("request", "create", "--title", "t", "--json").json()
    _outsider(server, tmp_path, "lab").ok("request", "send", asked["url"], str(source))
    bob.ok("request", "close", asked["id"])
    alice.ok("revoke", sent)
    wrong = httpx.post(
        f"{server.url}/api/v1/auth/login",
        json={"email": alice.email, "password": "not " + PASSWORD},
    )
    unknown = httpx.post(
        f"{server.url}/api/v1/auth/login",
        json={"email": "mallory@example.org", "password": PASSWORD},
    )
    assert (wrong.status_code, unknown.status_code) == (401, 401)

    records = _records(server)
    seen = _seen(records)
    for expected in [
        ("auth.login.succeeded", alice.email, None),
        ("keys.published", alice.email, None),
        ("transfer.created", alice.email, sent),
        ("transfer.sealed", alice.email, sent),
        ("transfer.downloaded", bob.email, sent),
        ("transfer.received", bob.email, sent),
        ("link.created", alice.email, link["id"]),
        ("link.accessed", "anonymous", link["id"]),
        ("link.exhausted", "server", link["id"]),
        ("transfer.downloaded", "anonymous", link["id"]),
        ("request.created", bob.email, asked["id"]),
        ("request.accessed", "anonymous", asked["id"]),
        ("request.answered", "anonymous", asked["id"]),
        ("request.closed", bob.email, asked["id"]),
        ("transfer.revoked", alice.email, sent),
        ("transfer.purged", alice.email, sent),
        ("auth.login.failed", alice.email, None),
        ("auth.login.failed", None, None),
    ]:
        if expected[0] == "keys.published":
            assert any(e == "keys.published" and a == alice.email for e, a, _ in seen)
            continue
        assert expected in seen, expected
    # In the order they happened.
    order = [seen.index(e) for e in [
        ("transfer.created", alice.email, sent),
        ("transfer.sealed", alice.email, sent),
        ("transfer.downloaded", bob.email, sent),
        ("transfer.received", bob.email, sent),
        ("transfer.revoked", alice.email, sent),
        ("transfer.purged", alice.email, sent),
    ]]  # fmt: skip
    assert order == sorted(order)
    # Every event a request caused carries the client address (the server's own too, such as a
    # link running out on a download); those of administration verbs run on its host, none.
    for record in records:
        local = (record.actor or "").startswith("local:")
        assert record.address == (None if local else "127.0.0.1"), record
    purged = next(r for r in records if str(r.event) == "transfer.purged" and r.subject == sent)
    assert purged.details["reason"] == "revoked"
    assert purged.details["files"] == 1
    failed = [r for r in records if str(r.event) == "auth.login.failed"]
    assert [r.details["account"] for r in failed] == ["known", "unknown"]
    # What someone typed as an address is not kept when no such account exists.
    assert "mallory" not in json.dumps([r.to_dict() for r in records])


def test_account_and_key_changes_are_recorded(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    made = alice.ok("token", "create", "--name", "nightly export", "--scope", "send", "--json")
    token_id = made.json()["id"]
    alice.ok("token", "revoke", token_id)
    alice.extra_env["PLI_NEW_PASSWORD"] = "another correct horse battery"
    alice.ok("passwd")
    assert sqlite_server.admin("disable-user", alice.email).returncode == 0
    assert sqlite_server.admin("enable-user", alice.email).returncode == 0

    seen = _seen(_records(sqlite_server))
    assert ("auth.token.created", alice.email, token_id) in seen
    assert ("auth.token.revoked", alice.email, token_id) in seen
    assert ("auth.password.changed", alice.email, None) in seen
    actions = [(e, s) for e, a, s in seen if e == "admin.action" and (a or "").startswith("local:")]
    assert actions == [
        ("admin.action", alice.email),  # created
        ("admin.action", alice.email),  # disabled
        ("admin.action", alice.email),  # enabled
    ]
