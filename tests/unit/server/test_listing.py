"""Inbox and outbox pages on real SQLite and PostgreSQL databases: keyset order, ties, what is
never listed, cursors that are malformed or not the caller's, and a constant query count."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session

from pli.errors import UsageError
from pli.server.auth import service as auth
from pli.server.transfers import cursor as cursors
from pli.server.transfers import service
from pli.store import models
from pli.store.db import Database

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session on a migrated database of each backend (the shared `engine` fixture)."""
    with Database(engine).session() as session:
        yield session


def _user(session: Session, name: str) -> models.User:
    user = auth.create_user(
        session, f"{name}@example.org", "a long enough password", is_admin=False, now=NOW
    )
    session.add(models.Device(id=service.new_id(), user_id=user.id, bundle="{}", created_at=NOW))
    session.commit()
    return user


def _send(
    session: Session,
    sender: models.User,
    to: list[models.User],
    *,
    created: datetime,
    files: int = 1,
    state: str = "sealed",
    lasts: timedelta = DAY,
) -> str:
    """A transfer made by the service itself at `created`, then put in `state`."""
    view = service.create(
        session, sender, [u.email for u in to], files, lasts, now=created, max_expiry=30 * DAY
    )
    view.transfer.state = state
    view.transfer.manifest = b"sealed manifest" if state == "sealed" else None
    session.commit()
    return view.transfer.id


def _walk(session: Session, user: models.User, box: str, limit: int) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        page = service.listing(session, user, box, now=NOW, limit=limit, cursor=cursor)
        pages.append([v.transfer.id for v in page.views])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def _newest_first(session: Session, ids: list[str]) -> list[str]:
    rows = [session.get_one(models.Transfer, i) for i in ids]
    return [t.id for t in sorted(rows, key=lambda t: (t.created_at, t.id), reverse=True)]


def test_pages_are_disjoint_and_complete_newest_first(db: Session) -> None:
    alice, bob = _user(db, "alice"), _user(db, "bob")
    # Three transfers per instant: ties inside pages and across page boundaries.
    sent = [_send(db, alice, [bob], created=NOW - timedelta(minutes=i // 3)) for i in range(23)]
    pages = _walk(db, bob, "inbox", 5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    listed = [i for p in pages for i in p]
    assert len(set(listed)) == len(listed)
    assert listed == _newest_first(db, sent)
    assert [i for p in _walk(db, alice, "outbox", 4) for i in p] == listed


def test_ties_are_broken_by_id(db: Session) -> None:
    alice, bob = _user(db, "alice"), _user(db, "bob")
    sent = [_send(db, alice, [bob], created=NOW - timedelta(hours=1)) for _ in range(7)]
    assert [i for p in _walk(db, bob, "inbox", 2) for i in p] == sorted(sent, reverse=True)


def test_a_last_full_page_says_there_is_no_more(db: Session) -> None:
    alice, bob = _user(db, "alice"), _user(db, "bob")
    for i in range(6):
        _send(db, alice, [bob], created=NOW - timedelta(seconds=i))
    assert [len(p) for p in _walk(db, bob, "inbox", 3)] == [3, 3]
    assert [len(p) for p in _walk(db, bob, "inbox", 6)] == [6]


def test_only_sealed_unexpired_transfers_are_listed(db: Session) -> None:
    alice, bob = _user(db, "alice"), _user(db, "bob")
    earlier = NOW - timedelta(hours=1)
    shown = _send(db, alice, [bob], created=earlier)
    for state in ("uploading", "revoked", "expired"):
        _send(db, alice, [bob], created=earlier, state=state)
    _send(db, alice, [bob], created=earlier, lasts=timedelta(minutes=30))  # past its expiry
    assert _walk(db, bob, "inbox", 50) == [[shown]]
    assert _walk(db, alice, "outbox", 50) == [[shown]]
    assert _walk(db, alice, "inbox", 50) == [[]]
    assert _walk(db, bob, "outbox", 50) == [[]]


def test_a_cursor_outlives_the_transfer_it_points_at(db: Session) -> None:
    alice, bob = _user(db, "alice"), _user(db, "bob")
    sent = [_send(db, alice, [bob], created=NOW - timedelta(seconds=i)) for i in range(5)]
    first = service.listing(db, bob, "inbox", now=NOW, limit=2)
    assert [v.transfer.id for v in first.views] == sent[:2]
    db.get_one(models.Transfer, sent[1]).state = "revoked"  # the page's last one
    db.commit()
    assert first.next_cursor is not None
    rest = service.listing(db, bob, "inbox", now=NOW, limit=50, cursor=first.next_cursor)
    assert [v.transfer.id for v in rest.views] == sent[2:]


def test_a_cursor_cannot_reach_another_users_transfers(db: Session) -> None:
    alice, bob, carol = _user(db, "alice"), _user(db, "bob"), _user(db, "carol")
    to_bob = [_send(db, alice, [bob], created=NOW - timedelta(minutes=2 * i)) for i in range(6)]
    to_carol = [
        _send(db, alice, [carol], created=NOW - timedelta(minutes=2 * i + 1)) for i in range(6)
    ]
    page = service.listing(db, bob, "inbox", now=NOW, limit=2)
    assert page.next_cursor is not None
    # The cursor holds the position of the last transfer bob was shown, and nothing else.
    position = cursors.decode(page.next_cursor, "inbox")
    last = page.views[-1].transfer
    assert (position.created_at, position.id) == (last.created_at, last.id)
    # In carol's hands it only moves where her own inbox resumes (after NOW - 2 minutes).
    theirs = service.listing(db, carol, "inbox", now=NOW, limit=50, cursor=page.next_cursor)
    assert [v.transfer.id for v in theirs.views] == to_carol[1:]
    # A made-up position naming one of bob's transfers leads carol to nothing of his either.
    forged = cursors.encode(cursors.Position("inbox", NOW + DAY, to_bob[0]))
    theirs = service.listing(db, carol, "inbox", now=NOW, limit=50, cursor=forged)
    assert [v.transfer.id for v in theirs.views] == to_carol
    assert service.listing(db, carol, "outbox", now=NOW, limit=50).views == []
    forged = cursors.encode(cursors.Position("outbox", NOW + DAY, to_bob[0]))
    assert service.listing(db, carol, "outbox", now=NOW, limit=50, cursor=forged).views == []


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


GOOD = _b64("inbox:1795867200000000:" + "0" * 32)
MALFORMED = [
    "",
    "!!!!",
    "a",  # not a possible base64 length
    GOOD + "=",  # padded
    GOOD[:-1] + "x",  # stray bits in the last character
    GOOD + "A",
    "x" * 200,
    "é",
    "\x00",
    _b64("inbox:1795867200000000"),
    _b64("inbox:-1:" + "0" * 32),
    _b64("inbox:01795867200000000:" + "0" * 32),
    _b64("inbox:1795867200000000:" + "0" * 31),
    _b64("inbox:1795867200000000:" + "G" * 32),
    _b64("inbox:999999999999999999:" + "0" * 32),  # past year 9999
    _b64("trash:1795867200000000:" + "0" * 32),
    base64.urlsafe_b64encode(b"\xff\xfe" * 20).rstrip(b"=").decode(),
]


def test_the_good_cursor_of_these_tests_is_good() -> None:
    position = cursors.decode(GOOD, "inbox")
    assert position.created_at == datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert cursors.encode(position) == GOOD


@pytest.mark.parametrize("text", MALFORMED)
def test_a_malformed_cursor_is_a_usage_error_with_a_sentence(text: str) -> None:
    with pytest.raises(UsageError, match=r"^this cursor is malformed: pass the next_cursor"):
        cursors.decode(text, "inbox")


def test_a_cursor_of_one_box_is_refused_by_the_other(db: Session) -> None:
    bob = _user(db, "bob")
    with pytest.raises(UsageError, match="this cursor continues the inbox, not the outbox"):
        service.listing(db, bob, "outbox", now=NOW, limit=50, cursor=GOOD)


def test_a_listing_takes_the_same_few_queries_however_long(db: Session) -> None:
    alice, bob, carol = _user(db, "alice"), _user(db, "bob"), _user(db, "carol")
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    def queries(limit: int) -> int:
        statements.clear()
        event.listen(db.get_bind(), "before_cursor_execute", count)
        try:
            page = service.listing(db, bob, "inbox", now=NOW, limit=limit)
        finally:
            event.remove(db.get_bind(), "before_cursor_execute", count)
        assert len(page.views) == limit
        assert all(len(v.files) == 3 and len(v.recipients) == 2 for v in page.views)
        return len(statements)

    for i in range(40):
        _send(db, alice, [bob, carol], created=NOW - timedelta(seconds=i), files=3)
    db.expire_all()  # nothing comes from the session's identity map
    assert bob.id  # but the caller, loaded before any listing starts
    assert queries(2) == queries(40) == 4
    view = service.listing(db, bob, "inbox", now=NOW, limit=1).views[0]
    assert view.sender == alice.email
    assert view.recipients == [bob.email, carol.email]
    assert [f.position for f in view.files] == [0, 1, 2]


def test_create_copies_the_creation_time_to_the_recipients(db: Session) -> None:
    alice, bob, carol = _user(db, "alice"), _user(db, "bob"), _user(db, "carol")
    created = NOW - timedelta(hours=3, microseconds=17)
    transfer_id = _send(db, alice, [bob, carol], created=created)
    rows = db.query(models.TransferRecipient).filter_by(transfer_id=transfer_id).all()
    assert [r.created_at for r in rows] == [created, created]
