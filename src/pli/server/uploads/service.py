"""Resumable uploads: the state of each one lives in the database, its parts in the blob
store, so an upload begun on one instance carries on on another, or after a restart.

One request writes to an upload at a time: it takes a lease with a conditional UPDATE (the
offset it writes at must still be the upload's offset, and no live lease may be held), renews
it while it receives, and gives it back when it commits its part or fails. A lease left by an
instance that died runs out after LEASE.

Each upload belongs to who started it, an `Actor` (see pli.server.transfers.service): an
account, or a guest answering a file request (the upload then has no user, and only that
guest's token reaches it).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, func, or_, select, update
from sqlalchemy.orm import Session

from pli.errors import ConflictError, LockedError, NotFoundError, TooLargeError, UsageError
from pli.server.policy import Policy
from pli.server.transfers import service as transfers
from pli.sizes import format_size
from pli.store import models
from pli.store.blobs import BlobStore, PartReceipt

LEASE = timedelta(seconds=30)
PART_TARGET = 64 << 20  # a long PATCH is made durable, and counted, every 64 MiB
MAX_CHECKED_PART = 1 << 30  # a PATCH with Upload-Checksum is kept or dropped whole
MAX_PARTS = 10_000  # S3's limit
NOT_FOUND = "no such upload (it was finished, cancelled or has expired)"


@dataclass(frozen=True)
class UploadState:
    id: str
    length: int
    offset: int
    expires_at: datetime
    token: str
    parts: list[PartReceipt]

    @property
    def done(self) -> bool:
        return self.offset == self.length


def _state(row: models.Upload) -> UploadState:
    parts = [PartReceipt(*p) for p in json.loads(row.parts)]
    return UploadState(row.id, row.length, row.offset, row.expires_at, row.token, parts)


def create(
    session: Session,
    blobs: BlobStore,
    actor: transfers.Actor,
    transfer_id: str,
    file_id: str,
    length: int,
    *,
    now: datetime,
    grace: timedelta,
    rules: Policy,
) -> UploadState:
    rules.check_file_size(length)
    if -(-length // PART_TARGET) > MAX_PARTS:
        raise TooLargeError("the file is larger than an upload can hold")
    row = transfers.upload_target(session, actor, transfer_id, file_id, now=now)
    if isinstance(actor, transfers.Guest):
        _check_guest_upload(session, row, length)
        owner = session.scalars(
            select(models.FileRequest.owner_id)
            .join(models.RequestAnswer, models.RequestAnswer.request_id == models.FileRequest.id)
            .where(models.RequestAnswer.transfer_id == row.transfer_id)
        ).one()
        _check_room(session, rules, owner, row, length, now=now, guest=True)
    else:
        _check_room(session, rules, actor.id, row, length, now=now)
    transfer = session.get(models.Transfer, transfer_id)
    expires = min(now + grace, transfer.expires_at) if transfer else now + grace
    upload = models.Upload(
        id=secrets.token_hex(16),
        user_id=None if isinstance(actor, transfers.Guest) else actor.id,
        transfer_id=transfer_id,
        file_id=row.id,
        length=length,
        offset=0,
        token=blobs.begin(),
        parts="[]",
        created_at=now,
        expires_at=expires,
    )
    session.add(upload)
    session.commit()
    return _state(upload)


def _answers_to(owner_id: int) -> Select[str]:
    """The answers to the account's file requests: stored on its behalf, within its quota."""
    return (
        select(models.TransferRecipient.transfer_id)
        .join(models.Transfer, models.Transfer.id == models.TransferRecipient.transfer_id)
        .where(models.TransferRecipient.user_id == owner_id, models.Transfer.kind == "answer")
    )


def _check_room(
    session: Session,
    rules: Policy,
    owner_id: int,
    row: models.TransferFile,
    length: int,
    *,
    now: datetime,
    guest: bool = False,
) -> None:
    """Refuse a file that would take its transfer past the maximum transfer size, or the
    account it is stored for (its sender; a file request's owner for an answer) past its quota:
    counting what is stored and what uploads under way announced."""
    if rules.max_transfer_size is not None:
        used = _stored_bytes(session, models.TransferFile.transfer_id == row.transfer_id, row.id)
        used += _pending_bytes(session, models.Upload.transfer_id == row.transfer_id, row.id, now)
        if used + length > rules.max_transfer_size:
            raise TooLargeError(
                "this transfer would be larger than this server accepts "
                f"({format_size(rules.max_transfer_size)}): send fewer or smaller files"
            )
    if rules.user_quota is not None:
        answers = _answers_to(owner_id)
        mine = or_(models.Transfer.sender_id == owner_id, models.Transfer.id.in_(answers))
        used = _stored_bytes(session, mine, row.id)
        pending = or_(models.Upload.user_id == owner_id, models.Upload.transfer_id.in_(answers))
        used += _pending_bytes(session, pending, row.id, now)
        if used + length > rules.user_quota and guest:
            raise TooLargeError(
                "the person who asked for these files has no room left on this server: "
                "ask them to make room, then send again"
            )
        if used + length > rules.user_quota:
            raise TooLargeError(
                f"your storage quota ({format_size(rules.user_quota)}) would be exceeded: "
                f"{format_size(used)} is in use; revoke transfers you no longer need, or wait "
                "until they expire"
            )


def _stored_bytes(session: Session, where: ColumnElement[bool], other_than: str) -> int:
    """Bytes of stored files (of live transfers) matching `where`, but file `other_than`."""
    stmt = (
        select(func.coalesce(func.sum(models.TransferFile.size), 0))
        .join(models.Transfer, models.Transfer.id == models.TransferFile.transfer_id)
        .where(
            where,
            models.TransferFile.blob_key.is_not(None),
            models.TransferFile.id != other_than,
        )
    )
    return int(session.scalar(stmt) or 0)


def _pending_bytes(
    session: Session, where: ColumnElement[bool], other_than: str, now: datetime
) -> int:
    """Bytes announced by unfinished uploads matching `where`, but those of `other_than`."""
    stmt = select(func.coalesce(func.sum(models.Upload.length), 0)).where(
        where,
        models.Upload.completed_at.is_(None),
        models.Upload.expires_at > now,
        models.Upload.file_id != other_than,
    )
    return int(session.scalar(stmt) or 0)


def _check_guest_upload(session: Session, row: models.TransferFile, length: int) -> None:
    """Someone without an account uploads each file it reserved once, at its reserved size:
    never more bytes than the reservation, however many uploads it starts."""
    if row.size != length:
        raise UsageError("Upload-Length must be the size this file was announced with")
    begun = select(models.Upload.id).where(
        models.Upload.file_id == row.id, models.Upload.completed_at.is_(None)
    )
    if row.blob_key is not None or session.scalars(begun).first() is not None:
        raise ConflictError("this file is uploaded already, or its upload is under way: resume it")


def _owns(actor: transfers.Actor, row: models.Upload) -> bool:
    if isinstance(actor, transfers.Guest):
        return row.user_id is None and row.transfer_id == actor.transfer_id
    return row.user_id is not None and row.user_id == actor.id


def _own(session: Session, actor: transfers.Actor, upload_id: str, now: datetime) -> models.Upload:
    row = session.get(models.Upload, upload_id)
    # Another user's (or guest's) upload is as unknown as one that never existed; so is one
    # whose transfer was revoked or has expired.
    if row is None or not _owns(actor, row) or row.expires_at <= now:
        raise NotFoundError(NOT_FOUND)
    transfer = session.get(models.Transfer, row.transfer_id)
    if transfer is None or transfer.state != "uploading" or transfer.expires_at <= now:
        raise NotFoundError(NOT_FOUND)
    return row


def status(
    session: Session, actor: transfers.Actor, upload_id: str, *, now: datetime
) -> UploadState:
    return _state(_own(session, actor, upload_id, now))


def check_part(state: UploadState, offset: int, size: int, *, checked: bool, min_part: int) -> None:
    """What a PATCH may be, before a byte of it is accepted."""
    if offset != state.offset:
        raise ConflictError(
            f"this upload is at offset {state.offset}, not {offset}: ask for its offset again"
        )
    if offset + size > state.length:
        raise UsageError(f"the request runs past the upload's length of {state.length} bytes")
    if checked and size > MAX_CHECKED_PART:
        raise TooLargeError(f"a request with a checksum may carry at most {MAX_CHECKED_PART} bytes")
    if size < min_part and offset + size != state.length:
        raise UsageError(f"every request but the last must carry at least {min_part} bytes")


def lease(session: Session, state: UploadState, *, now: datetime) -> None:
    """Take the upload to write at its current offset, or say why not."""
    upload_id, offset = state.id, state.offset
    taken = session.execute(
        update(models.Upload)
        .where(
            models.Upload.id == upload_id,
            models.Upload.offset == offset,
            models.Upload.completed_at.is_(None),
            or_(models.Upload.lease_until.is_(None), models.Upload.lease_until <= now),
        )
        .values(lease_until=now + LEASE)
    )
    session.commit()
    if getattr(taken, "rowcount", 0) != 1:
        raise LockedError("another request is writing to this upload: try again in a moment")


def renew(session: Session, upload_id: str, *, now: datetime) -> None:
    session.execute(
        update(models.Upload).where(models.Upload.id == upload_id).values(lease_until=now + LEASE)
    )
    session.commit()


def release(session: Session, upload_id: str) -> None:
    session.execute(
        update(models.Upload).where(models.Upload.id == upload_id).values(lease_until=None)
    )
    session.commit()


def record(
    session: Session,
    state: UploadState,
    receipt: PartReceipt,
    *,
    now: datetime,
    grace: timedelta,
    keep_lease: bool = False,
) -> UploadState:
    """The part is durable in the store: move the offset past it (and give the lease back,
    unless more parts of the same request follow)."""
    parts = [*state.parts, receipt]
    row = session.get(models.Upload, state.id, with_for_update=True)
    if row is None or row.offset != state.offset:
        session.rollback()
        raise ConflictError("this upload changed while the part was received: ask its offset")
    row.offset = state.offset + receipt.size
    row.parts = json.dumps([list(p) for p in parts])
    row.lease_until = now + LEASE if keep_lease else None
    row.expires_at = max(row.expires_at, min(now + grace, _transfer_expiry(session, row)))
    session.commit()
    return _state(row)


def _transfer_expiry(session: Session, row: models.Upload) -> datetime:
    transfer = session.get(models.Transfer, row.transfer_id)
    return transfer.expires_at if transfer else row.expires_at


def finish(session: Session, blobs: BlobStore, state: UploadState, *, now: datetime) -> None:
    """Every byte is in: turn the parts into the file's blob."""
    row = session.get(models.Upload, state.id)
    if row is None or row.completed_at is not None:
        return
    key = blobs.complete(state.token, state.parts)
    file_row = session.get(models.TransferFile, row.file_id)
    transfer = session.get(models.Transfer, row.transfer_id, with_for_update=True)
    row.completed_at = now
    if file_row is None or transfer is None or transfer.state != "uploading":
        # The transfer went away, was revoked or expired meanwhile: its purge has run, and
        # would not run again for a blob attached now.
        session.commit()
        blobs.delete(key)
        return
    transfers.attach_blob(session, blobs, file_row, key, state.length)


def terminate(
    session: Session, blobs: BlobStore, actor: transfers.Actor, upload_id: str, *, now: datetime
) -> None:
    row = _own(session, actor, upload_id, now)
    if row.completed_at is not None:
        raise ConflictError("this upload is finished: revoke the transfer to delete it")
    token = row.token
    session.delete(row)
    session.commit()
    blobs.cancel(token)


def abandoned(session: Session, *, now: datetime) -> list[models.Upload]:
    """Uploads that made no progress within their grace period, or whose transfer is gone."""
    ended = select(models.Transfer.id).where(
        or_(
            models.Transfer.state.not_in(("uploading", "sealed")),
            models.Transfer.expires_at <= now,
        )
    )
    stale = select(models.Upload).where(
        or_(models.Upload.expires_at <= now, models.Upload.transfer_id.in_(ended))
    )
    return list(session.scalars(stale))


def purge_abandoned(session: Session, blobs: BlobStore, *, now: datetime) -> int:
    """Uploads that made no progress within their grace period, or whose transfer is gone:
    their parts are dropped; finished ones only lose their bookkeeping row."""
    rows = abandoned(session, now=now)
    for row in rows:
        token, finished = row.token, row.completed_at is not None
        session.delete(row)
        session.commit()
        if not finished:
            blobs.cancel(token)
    return len(rows)
