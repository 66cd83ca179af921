"""File requests on real SQLite and PostgreSQL databases: their states, the limits answers
reserve against (held under concurrent callers), one answer for every way a public request can
fail, what a guest token reaches, and answers in the requester's inbox."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pli.errors import AuthError, ConflictError, NotFoundError, UsageError
from pli.server.auth.service import token_hash
from pli.server.requests import service
from pli.server.transfers import service as transfers
from pli.server.uploads import service as uploads
from pli.store import models
from pli.store.blobs import LocalBlobStore
from pli.store.db import Database
from tests.unit.server.exchange import (
    DAY,
    NOW,
    RULES,
    SENDER,
    SETTINGS,
    open_request,
    sealed,
    statements,
    user,
)

GRACE = timedelta(hours=24)
BIG = 1 << 40


def _answer(
    session: Session, request_id: str, sizes: list[int]
) -> tuple[str, transfers.TransferView]:
    return service.answer(
        session, request_id, SENDER, sizes, now=NOW, lifetime=7 * DAY, max_file_size=BIG
    )


def _upload(
    session: Session,
    blobs: LocalBlobStore,
    actor: transfers.Actor,
    view: transfers.TransferView,
    index: int,
    data: bytes,
) -> uploads.UploadState:
    """Upload one file of a transfer whole, as the tus routes do."""
    row = view.files[index]
    state = uploads.create(
        session,
        blobs,
        actor,
        view.transfer.id,
        row.id,
        len(data),
        now=NOW,
        grace=GRACE,
        rules=RULES,
    )
    uploads.lease(session, state, now=NOW)
    writer = blobs.part(state.token, 1, 0)
    writer.write(data)
    state = uploads.record(session, state, writer.commit(), now=NOW, grace=GRACE)
    uploads.finish(session, blobs, state, now=NOW)
    return state


def test_a_request_is_a_draft_then_open_then_full(database: Session) -> None:
    alice = user(database, "alice")
    made = service.create(
        database,
        alice,
        expires_in=DAY,
        max_files=2,
        max_bytes=100,
        now=NOW,
        max_expiry=30 * DAY,
    )
    assert service.state_of(made, NOW) == "draft"
    with pytest.raises(NotFoundError, match=service.GONE):
        service.open_request(database, made.id, SENDER, now=NOW)
    opened = service.seal(database, alice, made.id, sealed(b"doc", b"key"), now=NOW)
    assert (service.state_of(opened, NOW), opened.document, opened.sealed_key) == (
        "open",
        b"doc",
        b"key",
    )
    seen = service.open_request(database, made.id, SENDER, now=NOW)
    assert (seen.max_files - seen.files_used, seen.max_bytes - seen.bytes_used) == (2, 100)
    _answer(database, made.id, [10, 20])
    request = service.own(database, alice, made.id)
    database.refresh(request)
    assert (request.files_used, request.bytes_used) == (2, 30)
    assert service.state_of(request, NOW) == "full"
    assert service.state_of(request, NOW + DAY) == "expired"


def test_sealing_is_for_the_owner_and_for_drafts(database: Session) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    draft = service.create(
        database, alice, expires_in=DAY, max_files=1, max_bytes=1, now=NOW, max_expiry=30 * DAY
    )
    with pytest.raises(NotFoundError, match=service.NOT_FOUND):
        service.seal(database, bob, draft.id, sealed(b"doc", b"key"), now=NOW)
    for document, key in ((b"", b"key"), (b"doc", b""), (b"d" * (service.MAX_SEALED + 1), b"k")):
        with pytest.raises(UsageError):
            service.seal(database, alice, draft.id, sealed(document, key), now=NOW)
    with pytest.raises(ConflictError):  # a draft that has expired cannot be opened
        service.seal(database, alice, draft.id, sealed(b"doc", b"key"), now=NOW + DAY)
    service.seal(database, alice, draft.id, sealed(b"doc", b"key"), now=NOW)
    with pytest.raises(ConflictError):
        service.seal(database, alice, draft.id, sealed(b"doc", b"key"), now=NOW)
    with pytest.raises(NotFoundError, match=service.NOT_FOUND):
        service.own(database, bob, draft.id)


def test_limits_and_expiry_are_checked_at_creation(database: Session) -> None:
    alice = user(database, "alice")
    for files, size, lasts in ((0, 1, DAY), (1001, 1, DAY), (1, 0, DAY), (1, 1, 31 * DAY)):
        with pytest.raises(UsageError):
            service.create(
                database,
                alice,
                expires_in=lasts,
                max_files=files,
                max_bytes=size,
                now=NOW,
                max_expiry=30 * DAY,
            )


def test_requests_are_listed_newest_first_and_closed_once(database: Session) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    first = open_request(database, alice)
    second = service.create(
        database,
        alice,
        expires_in=DAY,
        max_files=1,
        max_bytes=1,
        now=NOW + timedelta(seconds=1),
        max_expiry=30 * DAY,
    )
    open_request(database, bob)
    assert [r.id for r in service.listing(database, alice, limit=10)] == [second.id, first]
    assert [r.id for r in service.listing(database, alice, limit=1)] == [second.id]
    closed = service.close(database, alice, first, now=NOW + timedelta(hours=1))
    again = service.close(database, alice, first, now=NOW + timedelta(hours=2))
    assert (again.state, again.closed_at) == ("closed", closed.closed_at)
    assert service.state_of(again, NOW) == "closed"
    with pytest.raises(NotFoundError, match=service.NOT_FOUND):
        service.close(database, bob, first, now=NOW)


def test_answers_reserve_within_both_limits(database: Session) -> None:
    alice = user(database, "alice")
    request_id = open_request(database, alice, max_files=3, max_bytes=100)
    with pytest.raises(NotFoundError, match=service.GONE):
        _answer(database, request_id, [60, 41])  # one byte too many
    with pytest.raises(NotFoundError, match=service.GONE):
        _answer(database, request_id, [1, 1, 1, 1])  # one file too many
    _answer(database, request_id, [60, 40])
    with pytest.raises(NotFoundError, match=service.GONE):  # no byte left
        _answer(database, request_id, [1])
    with pytest.raises(UsageError):
        service.answer(database, request_id, SENDER, [], now=NOW, lifetime=DAY, max_file_size=BIG)
    with pytest.raises(UsageError):
        service.answer(database, request_id, SENDER, [0], now=NOW, lifetime=DAY, max_file_size=BIG)
    with pytest.raises(UsageError):
        service.answer(database, request_id, SENDER, [11], now=NOW, lifetime=DAY, max_file_size=10)


def test_an_answer_is_a_transfer_to_the_owner_with_a_hashed_guest_token(
    database: Session,
) -> None:
    alice = user(database, "alice")
    request_id = open_request(database, alice)
    token, view = _answer(database, request_id, [3, 5])
    assert token.startswith(service.GUEST_PREFIX)
    t = view.transfer
    assert (t.kind, t.state, t.sender_id, view.sender) == ("answer", "uploading", None, "")
    assert t.expires_at == NOW + 7 * DAY
    assert view.recipients == [alice.email]
    assert view.request == request_id
    assert [f.size for f in view.files] == [3, 5]
    row = database.get_one(models.RequestAnswer, t.id)
    assert row.token_hash == token_hash(token)
    assert service.guest(database, token, now=NOW) == transfers.Guest(t.id)
    with pytest.raises(AuthError):
        service.guest(database, token + "x", now=NOW)


def _failures(session: Session) -> dict[str, Callable[[], object]]:
    """Every way for a request not to be open to anyone, for reading it and for answering."""
    alice = user(session, "alice")
    draft = service.create(
        session, alice, expires_in=DAY, max_files=5, max_bytes=50, now=NOW, max_expiry=30 * DAY
    ).id
    closed = open_request(session, alice)
    service.close(session, alice, closed, now=NOW)
    expired = open_request(session, alice, lasts=timedelta(hours=1))
    full = open_request(session, alice, max_files=1)
    _answer(session, full, [1])
    no_bytes = open_request(session, alice, max_bytes=1)
    _answer(session, no_bytes, [1])
    late = NOW + timedelta(hours=2)
    found: dict[str, Callable[[], object]] = {}
    for name, request_id, now in (
        ("unknown", "0" * 32, NOW),
        ("malformed", "../\x00" + "x" * 300, NOW),
        ("draft", draft, NOW),
        ("closed", closed, NOW),
        ("expired", expired, late),
        ("full", full, NOW),
        ("no byte left", no_bytes, NOW),
    ):
        found[f"read: {name}"] = functools.partial(
            service.open_request, session, request_id, SENDER, now=now
        )
        found[f"answer: {name}"] = functools.partial(
            service.answer,
            session,
            request_id,
            SENDER,
            [1],
            now=now,
            lifetime=DAY,
            max_file_size=BIG,
        )
    return found


def test_every_public_failure_is_the_same_answer_after_the_same_work(database: Session) -> None:
    work: dict[str, list[list[str]]] = {}
    for name, attempt in _failures(database).items():
        with statements(database) as seen, pytest.raises(NotFoundError) as refused:
            attempt()
        assert refused.value.message == service.GONE, name
        work.setdefault(name.split(":")[0], []).append(seen)
    for kind, runs in work.items():
        assert all(run == runs[0] for run in runs), kind
        assert len([s for s in runs[0] if s.startswith(("SELECT", "UPDATE"))]) == 1, kind


def test_concurrent_answers_never_exceed_the_limits(engine: Engine) -> None:
    with Database(engine).session() as session:
        request_id = open_request(session, user(session, "alice"), max_files=3)
    made: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(20)

    def one() -> None:
        with Database(engine).session() as session:
            start.wait()
            try:
                made.append(_answer(session, request_id, [1])[1].transfer.id)
            except NotFoundError as exc:
                refused.append(exc.message)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert (len(set(made)), set(refused)) == (3, {service.GONE})
    assert len(refused) == 17
    with Database(engine).session() as session:
        request = session.get_one(models.FileRequest, request_id)
        assert (request.files_used, request.bytes_used) == (3, 3)


def test_a_guest_reaches_its_own_answer_only(database: Session, blobs: LocalBlobStore) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    request_id = open_request(database, alice)
    token, mine = _answer(database, request_id, [4])
    _other_token, theirs = _answer(database, request_id, [4])
    guest = service.guest(database, token, now=NOW)
    direct = transfers.create(database, bob, [alice.email], 1, DAY, now=NOW, max_expiry=30 * DAY)
    for view in (theirs, direct):  # another answer, an account's transfer
        with pytest.raises(NotFoundError):
            _upload(database, blobs, guest, view, 0, b"four")
    with pytest.raises(UsageError, match="Upload-Length"):
        _upload(database, blobs, guest, mine, 0, b"five!")
    with pytest.raises(NotFoundError):  # an account cannot upload into an answer
        _upload(database, blobs, alice, mine, 0, b"four")
    started = uploads.create(
        database,
        blobs,
        guest,
        mine.transfer.id,
        mine.files[0].id,
        4,
        now=NOW,
        grace=GRACE,
        rules=RULES,
    )
    assert database.get_one(models.Upload, started.id).user_id is None
    for actor in (alice, bob, transfers.Guest(theirs.transfer.id)):
        with pytest.raises(NotFoundError):
            uploads.status(database, actor, started.id, now=NOW)
    account = _upload_started(database, blobs, bob, direct)
    with pytest.raises(NotFoundError):  # nor a guest an account's upload
        uploads.status(database, guest, account, now=NOW)
    with pytest.raises(NotFoundError):
        uploads.terminate(database, blobs, guest, account, now=NOW)
    uploads.terminate(database, blobs, guest, started.id, now=NOW)


def _upload_started(
    session: Session, blobs: LocalBlobStore, owner: models.User, view: transfers.TransferView
) -> str:
    state = uploads.create(
        session,
        blobs,
        owner,
        view.transfer.id,
        view.files[0].id,
        4,
        now=NOW,
        grace=GRACE,
        rules=RULES,
    )
    return state.id


def test_a_sealed_answer_reaches_the_inbox_and_its_token_opens_nothing(
    database: Session, blobs: LocalBlobStore
) -> None:
    alice = user(database, "alice")
    request_id = open_request(database, alice)
    token, view = _answer(database, request_id, [4, 3])
    guest = service.guest(database, token, now=NOW)
    _upload(database, blobs, guest, view, 0, b"four")
    with pytest.raises(ConflictError):  # a file is missing
        transfers.seal(database, guest, view.transfer.id, b"manifest", now=NOW, settings=SETTINGS)
    _upload(database, blobs, guest, view, 1, b"3!!")
    inbox = transfers.listing(database, alice, "inbox", now=NOW, limit=10)
    assert inbox.views == []  # not before it is sealed
    with pytest.raises(NotFoundError):
        transfers.get_visible(database, alice, view.transfer.id, now=NOW)
    with pytest.raises(NotFoundError):
        transfers.seal(database, guest, "0" * 32, b"manifest", now=NOW, settings=SETTINGS)
    transfers.seal(database, guest, view.transfer.id, b"manifest", now=NOW, settings=SETTINGS)
    with pytest.raises(AuthError):
        service.guest(database, token, now=NOW)
    service.close(database, alice, request_id, now=NOW)  # what was received stays
    listed = transfers.listing(database, alice, "inbox", now=NOW, limit=10).views
    assert [(v.transfer.id, v.transfer.kind, v.sender, v.request) for v in listed] == [
        (view.transfer.id, "answer", "", request_id)
    ]
    key = transfers.downloadable(database, alice, view.transfer.id, view.files[1].id, now=NOW)
    assert b"".join(blobs.read(key)) == b"3!!"
    assert transfers.listing(database, alice, "outbox", now=NOW, limit=10).views == []


def test_an_answer_left_uploading_is_purged_at_expiry(
    database: Session, blobs: LocalBlobStore
) -> None:
    alice = user(database, "alice")
    token, view = _answer(database, open_request(database, alice), [4, 4])
    guest = service.guest(database, token, now=NOW)
    state = _upload(database, blobs, guest, view, 0, b"four")
    key = database.get_one(models.TransferFile, view.files[0].id).blob_key
    assert key is not None
    assert transfers.purge_expired(database, blobs, now=NOW + 7 * DAY) == 1
    assert database.get_one(models.Transfer, view.transfer.id).state == "expired"
    assert not blobs.path(key).exists()
    assert uploads.purge_abandoned(database, blobs, now=NOW + 7 * DAY) == 1
    assert database.get(models.Upload, state.id) is None
    with pytest.raises(AuthError):
        service.guest(database, token, now=NOW)
    count = database.scalar(sa.select(sa.func.count()).select_from(models.RequestAnswer))
    assert count == 1  # the bookkeeping stays, as a transfer's metadata does


def test_a_closed_or_expired_request_takes_nothing_more_even_reserved(
    database: Session, blobs: LocalBlobStore
) -> None:
    alice = user(database, "alice")
    closed, expiring = open_request(database, alice), open_request(database, alice)
    token, view = _answer(database, closed, [4])
    late, _ = _answer(database, expiring, [4])
    service.close(database, alice, closed, now=NOW)
    with pytest.raises(AuthError, match="closed"):
        service.guest(database, token, now=NOW)
    with pytest.raises(AuthError):  # the answer itself lasts longer than its request
        service.guest(database, late, now=NOW + DAY)
    assert service.guest(database, late, now=NOW + DAY - timedelta(seconds=1))
    assert view.transfer.expires_at > NOW + DAY


def test_a_guest_uploads_each_reserved_file_once(database: Session, blobs: LocalBlobStore) -> None:
    alice = user(database, "alice")
    token, view = _answer(database, open_request(database, alice), [4, 4])
    guest = service.guest(database, token, now=NOW)
    first = uploads.create(
        database, blobs, guest, view.transfer.id, view.files[0].id, 4,
        now=NOW, grace=GRACE, rules=RULES,
    )  # fmt: skip
    with pytest.raises(ConflictError, match="under way"):  # not a second one beside it
        _upload(database, blobs, guest, view, 0, b"four")
    uploads.terminate(database, blobs, guest, first.id, now=NOW)
    _upload(database, blobs, guest, view, 0, b"four")
    with pytest.raises(ConflictError, match="uploaded already"):
        _upload(database, blobs, guest, view, 0, b"4444")
    uploads_of_file = sa.select(sa.func.count()).where(models.Upload.file_id == view.files[0].id)
    assert database.scalar(uploads_of_file) == 1


def _used(session: Session, request_id: str) -> tuple[int, int]:
    request = session.get_one(models.FileRequest, request_id)
    session.refresh(request)
    return request.files_used, request.bytes_used


def test_an_answer_that_will_not_be_sent_gives_its_room_back(
    database: Session, blobs: LocalBlobStore
) -> None:
    alice = user(database, "alice")
    request_id = open_request(database, alice, max_files=3, max_bytes=100, lasts=3 * DAY)
    idle, idle_view = _answer(database, request_id, [4])  # never uploads anything
    busy, busy_view = _answer(database, request_id, [4, 4])
    state = _upload(database, blobs, service.guest(database, busy, now=NOW), busy_view, 0, b"four")
    key = database.get_one(models.TransferFile, busy_view.files[0].id).blob_key
    assert _used(database, request_id) == (3, 12)

    release = functools.partial(service.release_abandoned, database, blobs, grace=GRACE)
    assert release(now=NOW + GRACE - timedelta(seconds=1)) == 0
    # Past the grace period the idle one goes; the busy one's upload made progress since.
    database.get_one(models.Upload, state.id).expires_at = NOW + 2 * GRACE
    database.commit()
    assert release(now=NOW + GRACE) == 1
    assert _used(database, request_id) == (2, 8)
    assert database.get_one(models.Transfer, idle_view.transfer.id).state == "revoked"
    with pytest.raises(AuthError):
        service.guest(database, idle, now=NOW + GRACE)
    assert release(now=NOW + GRACE) == 0  # given back once only

    service.close(database, alice, request_id, now=NOW + GRACE)
    assert release(now=NOW + GRACE) == 1  # a closed request takes nothing more: room back
    assert _used(database, request_id) == (0, 0)
    assert key is not None
    assert not blobs.path(key).exists()
