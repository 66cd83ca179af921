"""The key log against a server that lies: the real server, its database altered behind its back
the way a compromised operator would, and the real CLI that must notice."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from pli.crypto import keylog
from pli.crypto.identity import DeviceIdentity
from pli.crypto.signing import canonical_json
from pli.server.keys import log as key_log
from pli.server.keys import service as keys_service
from pli.store import models
from pli.store.db import database_url, make_engine
from tests.integration.conftest import Server, User, make_user

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@contextmanager
def server_db(server: Server) -> Iterator[Session]:
    """The server's own database, as its operator could open it."""
    engine = make_engine(database_url(server.data, server.database_url))
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def fabricate_device(server: Server, email: str, *, logged: bool) -> str:
    """A device the server makes up for `email` and hands out as active: logged as published
    (so its owner's audit can see it), or given the proof of another entry (entry 0)."""
    bundle = DeviceIdentity.generate(email).public_bundle()
    with server_db(server) as session:
        owner = keys_service.user_by_email(session, email)
        index = key_log.append(session, keylog.device_published(bundle, NOW)) if logged else 0
        session.add(
            models.Device(
                id=bundle.device,
                user_id=owner.id,
                bundle=canonical_json(bundle.signed).decode("utf-8"),
                created_at=NOW,
                state="active",
                log_index=index,
            )
        )
        session.commit()
    return bundle.device


def rewrite_log(server: Server, keep: int, later: timedelta) -> None:
    """Replace the key log with another history: its first `keep` entries logged again at
    another time (so every leaf differs), then nothing else."""
    with server_db(server) as session:
        leaves = key_log.leaves(session, 0, key_log.size(session))
        session.execute(delete(models.KeyLogEntry))
        session.execute(delete(models.KeyLogNode))
        session.execute(update(models.KeyLogHead).values(size=0))
        for leaf in leaves[:keep]:
            entry = keylog.Entry.decode(leaf)
            moved = datetime.strptime(entry.time, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            stamp = (moved + later).strftime("%Y-%m-%dT%H:%M:%SZ")
            key_log.append(session, keylog.Entry(**{**vars(entry), "time": stamp}))
        session.commit()


def path(tmp: Path, name: str, data: bytes = b"lab results") -> str:
    file = tmp / name
    file.write_bytes(data)
    return str(file)


@pytest.fixture
def trio(server: Server, tmp_path: Path) -> tuple[User, User, User]:
    return tuple(make_user(server, tmp_path, n) for n in ("alice", "bob", "carol"))  # type: ignore[return-value]


def test_a_key_absent_from_the_log_is_refused(
    trio: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, carol = trio
    bob.send(Path(path(tmp_path, "first.csv")), to=alice.email)  # bob pins alice's keys
    device = fabricate_device(alice.server, alice.email, logged=False)
    for sender in (bob, carol):  # pinned before, and at first contact
        refused = sender.run("send", path(tmp_path, "second.csv"), "--to", alice.email)
        assert refused.returncode == 1, refused.stderr
        assert f"the key log does not hold the keys of device {device} of {alice.email}" in (
            refused.stderr
        )
        assert "Traceback" not in refused.stderr
    pins = (
        json.loads((carol.home / "pins.json").read_text())
        if (carol.home / "pins.json").exists()
        else {}
    )
    assert alice.email not in pins  # nothing unproved was pinned


def test_a_logged_key_its_owner_did_not_make_is_refused_and_audited(
    trio: tuple[User, User, User], tmp_path: Path
) -> None:
    alice, bob, _ = trio
    bob.send(Path(path(tmp_path, "first.csv")), to=alice.email)
    clean = alice.ok("keys", "audit", "--json").json()
    assert clean["unknown"] == []
    assert clean["problems"] == []
    assert [e["entry"]["event"] for e in clean["yours"]] == ["device-published"]

    device = fabricate_device(alice.server, alice.email, logged=True)
    refused = bob.run("send", path(tmp_path, "second.csv"), "--to", alice.email)
    assert refused.returncode == 1
    assert f"the keys of {alice.email} have changed" in refused.stderr

    audit = alice.run("keys", "audit")
    assert audit.returncode == 3, audit.stderr
    assert f"the keys of device {device} of {alice.email}" in audit.stderr
    assert "none of your devices made or approved" in audit.stderr
    again = alice.run("keys", "audit")  # reported until resolved
    assert again.returncode == 3


def test_an_audit_reads_only_what_is_new(sqlite_server: Server, tmp_path: Path) -> None:
    alice, bob, _ = (make_user(sqlite_server, tmp_path, n) for n in ("alice", "bob", "carol"))
    first = alice.ok("keys", "audit", "--json").json()
    assert first["read"] == first["head"]["doc"]["size"] == 3
    assert alice.ok("keys", "audit", "--json").json()["read"] == 0
    make_user(alice.server, alice.home.parent, "dave")
    assert alice.ok("keys", "audit", "--json").json()["read"] == 1
    assert bob.ok("keys", "audit").returncode == 0


@pytest.mark.parametrize("keep", [3, 2], ids=["same-size", "shrunk"])
def test_a_forked_log_is_detected_and_kept_as_evidence(
    sqlite_server: Server, tmp_path: Path, keep: int
) -> None:
    alice, bob = (make_user(sqlite_server, tmp_path, n) for n in ("alice", "bob"))
    make_user(sqlite_server, tmp_path, "carol")
    bob.send(Path(path(tmp_path, "first.csv")), to=alice.email)  # bob keeps a head of size 3
    rewrite_log(sqlite_server, keep, timedelta(seconds=1))

    forked = bob.run("send", path(tmp_path, "second.csv"), "--to", alice.email)
    assert forked.returncode == 3, forked.stderr
    assert "forked" in forked.stderr
    evidence = bob.home / "key-log-evidence.jsonl"
    heads = json.loads(evidence.read_text().splitlines()[0])["heads"]
    assert {h["doc"]["size"] for h in heads} == {3, keep}

    again = bob.run("send", path(tmp_path, "third.csv"), "--to", alice.email)
    assert again.returncode == 3
    assert "forked earlier" in again.stderr
    assert str(evidence) in again.stderr


def test_the_server_key_is_pinned_at_login(sqlite_server: Server, tmp_path: Path) -> None:
    alice = make_user(sqlite_server, tmp_path, "alice")
    published = re.search(r"audit checkpoints with key (\S+):", sqlite_server.log.read_text())
    assert published is not None
    assert json.loads((alice.home / "key-log.json").read_text())["key"] == published.group(1)

    wrong = DeviceIdentity.generate(alice.email).public_bundle().ed25519
    other = User(alice.email, tmp_path / "other-home", sqlite_server)
    refused = other.run("login", sqlite_server.url, "--email", alice.email, "--server-key", wrong)
    assert refused.returncode == 3
    assert f"not with the key {wrong}" in refused.stderr
    right = User(alice.email, tmp_path / "right-home", sqlite_server)
    right.ok("login", sqlite_server.url, "--email", alice.email, "--server-key", published.group(1))
    malformed = User(alice.email, tmp_path / "bad-home", sqlite_server)
    bad = malformed.run("login", sqlite_server.url, "--email", alice.email, "--server-key", "x")
    assert bad.returncode == 2
    assert "--server-key must be" in bad.stderr
