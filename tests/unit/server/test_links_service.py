"""Share links on real SQLite and PostgreSQL databases: their states, the download limit held
under concurrent callers, one answer for every way a public request can fail, revocation,
the purge of exhausted links, and migration 0005 over a database that holds transfers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect
from sqlalchemy.orm import Session

import pli.store.db
from pli.errors import NotFoundError, UsageError
from pli.server.auth.service import token_hash
from pli.server.links import service
from pli.server.transfers import service as transfers
from pli.store import models
from pli.store.blobs import LocalBlobStore
from pli.store.db import Database, migrate
from tests.unit.server.exchange import DAY, NOW, blob, sealed_link, statements, user


def _state(session: Session, owner: models.User, link_id: str) -> str:
    found = {f.link.id: f for f in service.listing(session, owner, now=NOW, limit=100)}
    return found[link_id].state


def test_a_link_is_uploading_then_active_then_exhausted(
    database: Session, blobs: LocalBlobStore
) -> None:
    alice = user(database, "alice")
    made = service.create(database, alice, 1, DAY, 2, now=NOW, max_expiry=30 * DAY)
    assert made.state == "uploading"
    assert made.view.transfer.kind == "link"
    assert made.view.recipients == []
    with pytest.raises(NotFoundError, match=service.GONE):
        service.take_ticket(database, made.link.id, now=NOW)
    link_id = sealed_link(database, blobs, alice, max_downloads=2)
    assert _state(database, alice, link_id) == "active"
    service.take_ticket(database, link_id, now=NOW)
    listed = {f.link.id: f for f in service.listing(database, alice, now=NOW, limit=10)}
    assert (listed[link_id].link.downloads, listed[link_id].downloads_left) == (1, 1)
    service.take_ticket(database, link_id, now=NOW)
    assert _state(database, alice, link_id) == "exhausted"
    with pytest.raises(NotFoundError, match=service.GONE):
        service.take_ticket(database, link_id, now=NOW)


def test_links_are_listed_newest_first_and_apart_from_the_outbox(
    database: Session, blobs: LocalBlobStore
) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    first = sealed_link(database, blobs, alice)
    second = service.create(
        database, alice, 2, DAY, None, now=NOW + timedelta(seconds=1), max_expiry=30 * DAY
    )
    sealed_link(database, blobs, bob)
    found = service.listing(database, alice, now=NOW, limit=10)
    assert [f.link.id for f in found] == [second.link.id, first]
    assert found[0].downloads_left is None
    assert len(found[0].view.files) == 2
    assert service.listing(database, alice, now=NOW, limit=1)[0].link.id == second.link.id
    outbox = transfers.listing(database, alice, "outbox", now=NOW, limit=10)
    assert outbox.views == []


def test_limits_and_expiry_are_checked_at_creation(database: Session) -> None:
    alice = user(database, "alice")
    for files, downloads, lasts in ((0, None, DAY), (1, 0, DAY), (1, None, 31 * DAY)):
        with pytest.raises(UsageError):
            service.create(database, alice, files, lasts, downloads, now=NOW, max_expiry=30 * DAY)


def test_a_ticket_lasts_a_day_at_most_and_never_past_the_link(
    database: Session, blobs: LocalBlobStore
) -> None:
    alice = user(database, "alice")
    long_lived = sealed_link(database, blobs, alice, lasts=7 * DAY)
    ticket, expires, view = service.take_ticket(database, long_lived, now=NOW)
    assert ticket.startswith(service.TICKET_PREFIX)
    assert expires == NOW + service.TICKET_LIFETIME
    assert view.transfer.id == long_lived
    short = sealed_link(database, blobs, alice, lasts=timedelta(hours=2))
    _ticket, expires, _view = service.take_ticket(database, short, now=NOW)
    assert expires == NOW + timedelta(hours=2)
    # Only a hash of the ticket is kept.
    rows = database.scalars(sa.select(models.LinkTicket)).all()
    assert token_hash(ticket) in {r.token_hash for r in rows}
    assert all(not r.token_hash.startswith("pli_") for r in rows)


def test_a_ticket_opens_the_files_of_its_link(database: Session, blobs: LocalBlobStore) -> None:
    alice = user(database, "alice")
    link_id = sealed_link(database, blobs, alice, max_downloads=1, data=b"the bytes")
    ticket, _expires, view = service.take_ticket(database, link_id, now=NOW)
    expires, again = service.by_ticket(database, link_id, ticket, now=NOW + timedelta(hours=1))
    assert again.transfer.id == link_id
    assert expires == NOW + service.TICKET_LIFETIME
    key = service.file_by_ticket(database, link_id, view.files[0].id, ticket, now=NOW)
    assert b"".join(blobs.read(key)) == b"the bytes"


def _failures(session: Session, blobs: LocalBlobStore) -> dict[str, Callable[[], object]]:
    """Every way of failing to take a ticket, to read a link, or to fetch one of its files."""
    alice = user(session, "alice")
    active = sealed_link(session, blobs, alice)
    other = sealed_link(session, blobs, alice)
    ticket, _expires, view = service.take_ticket(session, active, now=NOW)
    other_ticket, _e, _v = service.take_ticket(session, other, now=NOW)
    file_id = view.files[0].id
    made = service.create(session, alice, 1, DAY, None, now=NOW, max_expiry=30 * DAY)
    uploading = made.link.id
    revoked = sealed_link(session, blobs, alice)
    service.revoke(session, blobs, alice, revoked, now=NOW)
    expired = sealed_link(session, blobs, alice, lasts=timedelta(hours=1))
    exhausted = sealed_link(session, blobs, alice, max_downloads=1)
    service.take_ticket(session, exhausted, now=NOW)
    late = NOW + 2 * DAY
    take, read = service.take_ticket, service.by_ticket
    return {
        "take: unknown": lambda: take(session, "0" * 32, now=NOW),
        "take: malformed": lambda: take(session, "../\x00" + "x" * 300, now=NOW),
        "take: uploading": lambda: take(session, uploading, now=NOW),
        "take: revoked": lambda: take(session, revoked, now=NOW),
        "take: expired": lambda: take(session, expired, now=NOW + timedelta(hours=2)),
        "take: exhausted": lambda: take(session, exhausted, now=NOW),
        "read: no ticket": lambda: read(session, active, "", now=NOW),
        "read: wrong ticket": lambda: read(session, active, "pli_ticket_" + "A" * 43, now=NOW),
        "read: expired ticket": lambda: read(session, active, ticket, now=late),
        "read: another link's": lambda: read(session, active, other_ticket, now=NOW),
        "read: unknown link": lambda: read(session, "0" * 32, ticket, now=NOW),
        "read: malformed link": lambda: read(session, "\x00", ticket, now=NOW),
        "file: no ticket": lambda: service.file_by_ticket(session, active, file_id, "", now=NOW),
        "file: another link's": lambda: service.file_by_ticket(
            session, active, file_id, other_ticket, now=NOW
        ),
        "file: unknown file": lambda: service.file_by_ticket(
            session, active, "0" * 32, ticket, now=NOW
        ),
        "file: malformed file": lambda: service.file_by_ticket(
            session, active, "\x00", ticket, now=NOW
        ),
    }


def test_every_public_failure_is_the_same_answer_after_the_same_work(
    database: Session, blobs: LocalBlobStore
) -> None:
    work: dict[str, list[list[str]]] = {}
    for name, attempt in _failures(database, blobs).items():
        with statements(database) as seen, pytest.raises(NotFoundError) as refused:
            attempt()
        assert refused.value.message == service.GONE, name
        work.setdefault(name.split(":")[0], []).append(seen)
    for kind, runs in work.items():
        # The same statements whatever the reason: one, with every condition in it (and, for
        # a ticket, the rollback of a reservation that changed nothing).
        assert all(run == runs[0] for run in runs), kind
        assert len([s for s in runs[0] if s.startswith(("SELECT", "UPDATE"))]) == 1, kind


def _take_concurrently(engine: Engine, link_id: str, callers: int) -> list[str]:
    taken: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(callers)

    def one() -> None:
        with Database(engine).session() as session:
            start.wait()
            try:
                taken.append(service.take_ticket(session, link_id, now=NOW)[0])
            except NotFoundError as exc:
                refused.append(exc.message)

    threads = [threading.Thread(target=one) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(taken) + len(refused) == callers
    assert set(refused) <= {service.GONE}
    return taken


def test_concurrent_callers_never_take_more_downloads_than_allowed(
    engine: Engine, tmp_path: Path
) -> None:
    blobs = LocalBlobStore(tmp_path / "race")
    with Database(engine).session() as session:
        link_id = sealed_link(session, blobs, user(session, "alice"), max_downloads=3)
    taken = _take_concurrently(engine, link_id, 20)
    assert len(taken) == len(set(taken)) == 3
    with Database(engine).session() as session:
        assert session.get_one(models.Link, link_id).downloads == 3
        count = session.scalar(sa.select(sa.func.count()).select_from(models.LinkTicket))
        assert count == 3


def test_revoking_drops_the_files_and_tickets_and_may_be_repeated(
    database: Session, blobs: LocalBlobStore
) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    link_id = sealed_link(database, blobs, alice)
    ticket, _expires, view = service.take_ticket(database, link_id, now=NOW)
    key = view.files[0].blob_key
    assert key is not None
    with pytest.raises(NotFoundError, match=service.NOT_FOUND):
        service.revoke(database, blobs, bob, link_id, now=NOW)
    with pytest.raises(NotFoundError, match=service.NOT_FOUND):
        service.revoke(database, blobs, alice, "0" * 32, now=NOW)
    service.revoke(database, blobs, alice, link_id, now=NOW)
    service.revoke(database, blobs, alice, link_id, now=NOW)
    assert _state(database, alice, link_id) == "revoked"
    transfer = database.get_one(models.Transfer, link_id)
    assert (transfer.state, transfer.manifest) == ("revoked", None)
    assert not blobs.path(key).exists()
    assert database.scalars(sa.select(models.LinkTicket)).all() == []
    with pytest.raises(NotFoundError, match=service.GONE):
        service.by_ticket(database, link_id, ticket, now=NOW)


def test_an_exhausted_link_is_emptied_once_no_ticket_runs(
    database: Session, blobs: LocalBlobStore
) -> None:
    alice = user(database, "alice")
    link_id = sealed_link(database, blobs, alice, max_downloads=1)
    unlimited = sealed_link(database, blobs, alice)
    ticket, _expires, view = service.take_ticket(database, link_id, now=NOW)
    service.take_ticket(database, unlimited, now=NOW)
    key = view.files[0].blob_key
    assert key is not None
    # The last ticket is still being used: the files stay for it.
    assert service.purge(database, blobs, now=NOW + timedelta(hours=1)) == 0
    assert service.by_ticket(database, link_id, ticket, now=NOW + timedelta(hours=1))
    later = NOW + service.TICKET_LIFETIME
    assert service.purge(database, blobs, now=later) == 1
    transfer = database.get_one(models.Transfer, link_id)
    assert (transfer.state, transfer.manifest) == ("exhausted", None)
    assert not blobs.path(key).exists()
    assert database.scalars(sa.select(models.LinkTicket)).all() == []  # expired: deleted
    assert _state(database, alice, link_id) == "exhausted"
    assert database.get_one(models.Transfer, unlimited).state == "sealed"
    assert service.purge(database, blobs, now=later) == 0


def test_expired_links_are_purged_as_transfers_are(
    database: Session, blobs: LocalBlobStore
) -> None:
    alice = user(database, "alice")
    link_id = sealed_link(database, blobs, alice, lasts=timedelta(hours=1))
    uploading = service.create(
        database, alice, 1, timedelta(hours=1), None, now=NOW, max_expiry=30 * DAY
    )
    part = blob(blobs, b"half")
    transfers.attach_blob(database, blobs, uploading.view.files[0], part, 4)
    later = NOW + timedelta(hours=2)
    assert transfers.purge_expired(database, blobs, now=later) == 2
    assert not blobs.path(part).exists()
    assert _state(database, alice, link_id) == "expired"
    assert database.get_one(models.Transfer, link_id).manifest is None


# --- migration 0005 ---------------------------------------------------------------------------


def _to(engine: Engine, revision: str, *, down: bool = False) -> None:
    config = Config()
    config.set_main_option(
        "script_location", str(Path(pli.store.db.__file__).with_name("migrations"))
    )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, revision)


_COUNTED = ("transfers", "transfer_recipients", "transfer_files", "uploads")


def _fill_at_0004(engine: Engine) -> dict[str, int]:
    """Two users, a sealed transfer between them and an upload of another, as 0004 held them."""
    tables = sa.MetaData()
    tables.reflect(engine)
    t = tables.tables
    with engine.begin() as conn:
        for user_id in (101, 102):  # past what a PostgreSQL sequence hands out next
            conn.execute(
                t["users"]
                .insert()
                .values(
                    id=user_id,
                    email=f"u{user_id}@example.org",
                    password_hash="x",
                    is_admin=False,
                    created_at=NOW,
                )
            )
        for transfer_id, state in (("a" * 32, "sealed"), ("b" * 32, "uploading")):
            conn.execute(
                t["transfers"]
                .insert()
                .values(
                    id=transfer_id,
                    sender_id=101,
                    state=state,
                    created_at=NOW,
                    expires_at=NOW + DAY,
                    manifest=b"m" if state == "sealed" else None,
                )
            )
            conn.execute(
                t["transfer_recipients"]
                .insert()
                .values(transfer_id=transfer_id, user_id=102, created_at=NOW)
            )
            conn.execute(
                t["transfer_files"]
                .insert()
                .values(id=transfer_id[:31] + "f", transfer_id=transfer_id, position=0, size=5)
            )
        conn.execute(
            t["uploads"]
            .insert()
            .values(
                id="c" * 32,
                user_id=101,
                transfer_id="b" * 32,
                file_id="b" * 31 + "f",
                length=5,
                offset=0,
                token="t" * 32,
                parts="[]",
                created_at=NOW,
                expires_at=NOW + DAY,
            )
        )
    return _counts(engine)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar_one()
            for name in _COUNTED
        }


def test_0005_keeps_every_transfer_and_what_refers_to_them(engine: Engine) -> None:
    _to(engine, "0004", down=True)
    before = _fill_at_0004(engine)
    assert before == {"transfers": 2, "transfer_recipients": 2, "transfer_files": 2, "uploads": 1}
    _to(engine, "0005")
    assert _counts(engine) == before
    columns = {c["name"]: c for c in inspect(engine).get_columns("transfers")}
    assert columns["sender_id"]["nullable"] is True
    assert {c["name"]: c for c in inspect(engine).get_columns("uploads")}["user_id"]["nullable"]
    migrate(engine)  # the newest models read the newest schema
    assert _counts(engine) == before
    with Database(engine).session() as session:
        bob = session.get_one(models.User, 102)
        page = transfers.listing(session, bob, "inbox", now=NOW, limit=10)
        assert [(v.transfer.id, v.transfer.kind, v.request) for v in page.views] == [
            ("a" * 32, "direct", None)
        ]
        upload = session.get_one(models.Upload, "c" * 32)
        assert upload.user_id == 101


def test_0005_goes_back_down_keeping_the_direct_transfers(engine: Engine, tmp_path: Path) -> None:
    _to(engine, "0004", down=True)
    before = _fill_at_0004(engine)
    migrate(engine)  # through 0005 to the newest, whose models make a link; then all the way down
    with Database(engine).session() as session:
        link_id = sealed_link(session, LocalBlobStore(tmp_path / "b"), user(session, "carol"))
        assert session.get(models.Transfer, link_id) is not None
    _to(engine, "0004", down=True)
    assert _counts(engine) == before
    assert "kind" not in {c["name"] for c in inspect(engine).get_columns("transfers")}
    migrate(engine)
    assert _counts(engine) == before
