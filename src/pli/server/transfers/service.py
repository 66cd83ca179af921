"""Transfer lifecycle. Every read starts from `visible_to(user)`: a query that forgets a
permission check still cannot see another user's transfers."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from pli.errors import ConflictError, ForbiddenError, GoneError, NotFoundError, UsageError
from pli.server.keys.service import devices_of, user_by_email
from pli.store import models
from pli.store.blobs import BlobStore

MAX_FILES = 1000
MAX_RECIPIENTS = 500
MAX_MANIFEST = 4 << 20
NOT_FOUND = "no such transfer (or it is not addressed to you)"


def new_id() -> str:
    return secrets.token_hex(16)


def visible_to(user: models.User) -> Select[models.Transfer]:
    recipient_of = select(models.TransferRecipient.transfer_id).where(
        models.TransferRecipient.user_id == user.id
    )
    return select(models.Transfer).where(
        or_(models.Transfer.sender_id == user.id, models.Transfer.id.in_(recipient_of))
    )


@dataclass(frozen=True)
class TransferView:
    transfer: models.Transfer
    sender: str
    recipients: list[str]
    files: list[models.TransferFile]


def create(
    session: Session,
    sender: models.User,
    recipients: list[str],
    files: int,
    expires_in: timedelta,
    *,
    now: datetime,
    max_expiry: timedelta,
) -> TransferView:
    if not recipients or len(recipients) > MAX_RECIPIENTS:
        raise UsageError(f"a transfer needs between 1 and {MAX_RECIPIENTS} recipients")
    if not 1 <= files <= MAX_FILES:
        raise UsageError(f"a transfer holds between 1 and {MAX_FILES} files")
    if expires_in > max_expiry:
        raise UsageError(f"the expiry is above this server's maximum of {max_expiry.days} days")
    users = {u.id: u for u in (_recipient(session, email) for email in recipients)}
    transfer = models.Transfer(
        id=new_id(),
        sender_id=sender.id,
        state="uploading",
        created_at=now,
        expires_at=now + expires_in,
    )
    session.add(transfer)
    session.flush()
    session.add_all(models.TransferRecipient(transfer_id=transfer.id, user_id=u) for u in users)
    rows = [
        models.TransferFile(id=new_id(), transfer_id=transfer.id, position=i) for i in range(files)
    ]
    session.add_all(rows)
    session.commit()
    return TransferView(transfer, sender.email, sorted(u.email for u in users.values()), rows)


def _recipient(session: Session, email: str) -> models.User:
    user = user_by_email(session, email)
    if not devices_of(session, user):
        raise ConflictError(f"{user.email} has no keys yet: ask them to run `pli keys init`")
    return user


def get_visible(
    session: Session, user: models.User, transfer_id: str, *, now: datetime
) -> TransferView:
    transfer = session.scalars(visible_to(user).where(models.Transfer.id == transfer_id)).first()
    # Recipients only ever see sealed transfers; anyone else is told it does not exist.
    if transfer is None or (transfer.sender_id != user.id and transfer.state == "uploading"):
        raise NotFoundError(NOT_FOUND)
    if transfer.state == "revoked":
        raise GoneError("this transfer was revoked by its sender")
    if transfer.state == "expired" or transfer.expires_at <= now:
        raise GoneError("this transfer has expired")
    return _view(session, transfer)


def _view(session: Session, transfer: models.Transfer) -> TransferView:
    sender = session.get(models.User, transfer.sender_id)
    stmt = (
        select(models.User.email)
        .join(models.TransferRecipient, models.TransferRecipient.user_id == models.User.id)
        .where(models.TransferRecipient.transfer_id == transfer.id)
        .order_by(models.User.email)
    )
    files = select(models.TransferFile).where(models.TransferFile.transfer_id == transfer.id)
    return TransferView(
        transfer,
        sender.email if sender else "",
        list(session.scalars(stmt)),
        list(session.scalars(files.order_by(models.TransferFile.position))),
    )


def own_uploading(
    session: Session, user: models.User, transfer_id: str, *, now: datetime
) -> models.Transfer:
    view = get_visible(session, user, transfer_id, now=now)
    if view.transfer.sender_id != user.id:
        raise ForbiddenError("only the sender can change a transfer")
    if view.transfer.state != "uploading":
        raise ConflictError("this transfer is already sealed")
    return view.transfer


def upload_target(
    session: Session, user: models.User, transfer_id: str, file_id: str, *, now: datetime
) -> models.TransferFile:
    own_uploading(session, user, transfer_id, now=now)
    row = session.get(models.TransferFile, file_id)
    if row is None or row.transfer_id != transfer_id:
        raise NotFoundError("no such file in this transfer")
    return row


def attach_blob(
    session: Session, blobs: BlobStore, row: models.TransferFile, key: str, size: int, digest: str
) -> None:
    old = row.blob_key
    row.blob_key, row.size, row.sha256 = key, size, digest
    session.commit()
    if old is not None:
        blobs.delete(old)


def seal(
    session: Session, user: models.User, transfer_id: str, manifest: bytes, *, now: datetime
) -> TransferView:
    if not manifest or len(manifest) > MAX_MANIFEST:
        raise UsageError("the manifest is empty or too large")
    transfer = own_uploading(session, user, transfer_id, now=now)
    view = _view(session, transfer)
    if any(f.blob_key is None for f in view.files):
        raise ConflictError("some files of this transfer have not been uploaded")
    transfer.manifest, transfer.state, transfer.sealed_at = manifest, "sealed", now
    session.commit()
    return view


def listing(
    session: Session, user: models.User, box: str, *, now: datetime, limit: int
) -> list[TransferView]:
    stmt = visible_to(user).where(
        models.Transfer.state == "sealed", models.Transfer.expires_at > now
    )
    if box == "outbox":
        stmt = stmt.where(models.Transfer.sender_id == user.id)
    else:
        recipient_of = select(models.TransferRecipient.transfer_id).where(
            models.TransferRecipient.user_id == user.id
        )
        stmt = stmt.where(models.Transfer.id.in_(recipient_of))
    stmt = stmt.order_by(models.Transfer.created_at.desc(), models.Transfer.id).limit(limit)
    return [_view(session, t) for t in session.scalars(stmt)]


def downloadable(
    session: Session, user: models.User, transfer_id: str, file_id: str, *, now: datetime
) -> str:
    """The blob key of a file the user may download."""
    view = get_visible(session, user, transfer_id, now=now)
    if view.transfer.state != "sealed":
        raise NotFoundError(NOT_FOUND)
    for row in view.files:
        if row.id == file_id and row.blob_key is not None:
            return row.blob_key
    raise NotFoundError("no such file in this transfer")


def revoke(
    session: Session, blobs: BlobStore, user: models.User, transfer_id: str, *, now: datetime
) -> None:
    view = get_visible(session, user, transfer_id, now=now)
    if view.transfer.sender_id != user.id:
        raise ForbiddenError("only the sender can revoke a transfer")
    view.transfer.state = "revoked"
    view.transfer.manifest = None
    _drop_blobs(session, blobs, view.files)


def _drop_blobs(session: Session, blobs: BlobStore, files: list[models.TransferFile]) -> None:
    keys = [f.blob_key for f in files if f.blob_key is not None]
    for row in files:
        row.blob_key = None
    session.commit()
    for key in keys:
        blobs.delete(key)


def purge_expired(session: Session, blobs: BlobStore, *, now: datetime) -> int:
    """Delete the blobs of every transfer past its expiry; the metadata stays for audit."""
    stmt = select(models.Transfer).where(
        models.Transfer.expires_at <= now, models.Transfer.state.in_(("uploading", "sealed"))
    )
    expired = list(session.scalars(stmt))
    for transfer in expired:
        transfer.state = "expired"
        transfer.manifest = None  # the encrypted names and message go with the files
        _drop_blobs(session, blobs, _view(session, transfer).files)
    return len(expired)
