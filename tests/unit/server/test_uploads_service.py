"""Resumable uploads' bookkeeping on a real database and a real blob directory: leases, parts,
completion, and the purge of abandoned uploads."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from pli.errors import ConflictError, LockedError, NotFoundError, TooLargeError, UsageError
from pli.server.uploads import service
from pli.store import models
from pli.store.blobs import LocalBlobStore
from tests.unit.server.exchange import RULES

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
GRACE = timedelta(hours=24)


def _transfer(session: Session) -> tuple[models.User, models.TransferFile]:
    alice = models.User(email="alice@example.org", password_hash="x", created_at=NOW)
    session.add(alice)
    session.flush()
    transfer = models.Transfer(
        id="a" * 32,
        sender_id=alice.id,
        state="uploading",
        created_at=NOW,
        expires_at=NOW + timedelta(days=7),
    )
    session.add(transfer)
    session.flush()
    row = models.TransferFile(id="b" * 32, transfer_id=transfer.id, position=0)
    session.add(row)
    session.commit()
    return alice, row


def _upload(
    session: Session, blobs: LocalBlobStore, length: int
) -> tuple[models.User, service.UploadState]:
    alice, row = _transfer(session)
    state = service.create(
        session,
        blobs,
        alice,
        row.transfer_id,
        row.id,
        length,
        now=NOW,
        grace=GRACE,
        rules=RULES,
    )
    return alice, state


def _write(
    session: Session, blobs: LocalBlobStore, state: service.UploadState, data: bytes
) -> service.UploadState:
    service.lease(session, state, now=NOW)
    writer = blobs.part(state.token, len(state.parts) + 1, state.offset)
    writer.write(data)
    return service.record(session, state, writer.commit(), now=NOW, grace=GRACE)


def test_parts_move_the_offset_and_the_last_attaches_the_blob(
    session: Session, tmp_path: Path
) -> None:
    blobs = LocalBlobStore(tmp_path)
    alice, state = _upload(session, blobs, 10)
    state = _write(session, blobs, state, b"01234")
    assert service.status(session, alice, state.id, now=NOW).offset == 5
    state = _write(session, blobs, state, b"56789")
    assert state.done
    service.finish(session, blobs, state, now=NOW)
    row = session.get(models.TransferFile, "b" * 32)
    assert row is not None
    assert row.size == 10
    assert row.blob_key is not None
    assert b"".join(blobs.read(row.blob_key)) == b"0123456789"


def test_one_writer_at_a_time(session: Session, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    _alice, state = _upload(session, blobs, 10)
    service.lease(session, state, now=NOW)
    with pytest.raises(LockedError):
        service.lease(session, state, now=NOW)
    # A lease left by an instance that died runs out.
    service.lease(session, state, now=NOW + service.LEASE)


def test_what_a_request_may_be(session: Session, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    _alice, state = _upload(session, blobs, 10 << 20)
    with pytest.raises(ConflictError):
        service.check_part(state, 5, 5, checked=False, min_part=1)
    with pytest.raises(UsageError):
        service.check_part(state, 0, (10 << 20) + 1, checked=False, min_part=1)
    with pytest.raises(UsageError):  # below a store's minimum, unless it is the last
        service.check_part(state, 0, 1 << 20, checked=False, min_part=5 << 20)
    service.check_part(state, 0, 10 << 20, checked=False, min_part=5 << 20)
    with pytest.raises(TooLargeError):
        service.create(
            session,
            blobs,
            _alice,
            "a" * 32,
            "b" * 32,
            2 << 30,
            now=NOW,
            grace=GRACE,
            rules=dataclasses.replace(RULES, max_file_size=1 << 30),
        )


def test_someone_elses_upload_does_not_exist(session: Session, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    alice, state = _upload(session, blobs, 10)
    mallory = models.User(id=alice.id + 1, email="m@example.org", password_hash="x", created_at=NOW)
    with pytest.raises(NotFoundError):
        service.status(session, mallory, state.id, now=NOW)
    with pytest.raises(NotFoundError):
        service.terminate(session, blobs, mallory, state.id, now=NOW)


def test_abandoned_uploads_are_purged_after_the_grace_period(
    session: Session, tmp_path: Path
) -> None:
    blobs = LocalBlobStore(tmp_path)
    _alice, state = _upload(session, blobs, 10)
    _write(session, blobs, state, b"01234")
    assert service.purge_abandoned(session, blobs, now=NOW + GRACE / 2) == 0
    assert list((tmp_path / "uploads").iterdir()) != []
    assert service.purge_abandoned(session, blobs, now=NOW + GRACE) == 1
    assert list((tmp_path / "uploads").iterdir()) == []
    assert session.get(models.Upload, state.id) is None


def test_a_revoked_transfer_takes_its_uploads_with_it(session: Session, tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path)
    alice, state = _upload(session, blobs, 10)
    _write(session, blobs, state, b"01234")
    transfer = session.get(models.Transfer, "a" * 32)
    assert transfer is not None
    transfer.state = "revoked"
    session.commit()
    with pytest.raises(NotFoundError):
        service.status(session, alice, state.id, now=NOW)
    assert service.purge_abandoned(session, blobs, now=NOW) == 1
    assert list((tmp_path / "uploads").iterdir()) == []
