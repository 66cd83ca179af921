"""File requests: an account asks for files, and people without an account answer.

A request is made as a draft, then sealed with its document (what the requester signed: the
title, who asks) and its key, both ciphertext the server cannot open, and then it is open.
Each answer reserves its files and bytes against the request's limits in one conditional
UPDATE, so concurrent answers can never exceed them, and becomes a transfer of kind "answer"
to the owner's inbox, uploaded and sealed with a guest token (stored as its SHA-256 only).

What anyone may ask without an account (`open_request`, `answer`) fails in one way, whatever
the reason: the request is unknown, malformed, a draft, closed, expired or full.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.errors import AuthError, ConflictError, NotFoundError, UsageError
from pli.server.auth.service import token_hash
from pli.server.transfers import service as transfers
from pli.store import models
from pli.store.blobs import BlobStore

GUEST_PREFIX = "pli_guest_"
MIN_SENDER_TOKEN, MAX_SENDER_TOKEN = 32, 128
MAX_FILES = 1000
MAX_BYTES = 1 << 40
MAX_SEALED = 64 << 10  # the document and the sealed key, each
NOT_FOUND = "no such file request"
GONE = "this request does not exist or is no longer open"


@dataclass(frozen=True)
class Sealed:
    """What opens a draft: its document and key (ciphertext), and the token its senders
    will show (kept as its SHA-256)."""

    document: bytes
    sealed_key: bytes
    sender_token: str


def state_of(request: models.FileRequest, now: datetime) -> str:
    """draft, open, closed, expired or full."""
    if request.state == "closed":
        return "closed"
    if request.expires_at <= now:
        return "expired"
    if request.state == "draft":
        return "draft"
    return "full" if request.files_used >= request.max_files else "open"


def create(
    session: Session,
    owner: models.User,
    *,
    expires_in: timedelta,
    max_files: int,
    max_bytes: int,
    now: datetime,
    max_expiry: timedelta,
) -> models.FileRequest:
    transfers.check_expiry(expires_in, max_expiry)
    if not 1 <= max_files <= MAX_FILES:
        raise UsageError(f"a request accepts between 1 and {MAX_FILES} files")
    if not 1 <= max_bytes <= MAX_BYTES:
        raise UsageError(f"a request accepts between 1 and {MAX_BYTES} bytes")
    request = models.FileRequest(
        id=secrets.token_hex(16),
        owner_id=owner.id,
        state="draft",
        created_at=now,
        expires_at=now + expires_in,
        max_files=max_files,
        max_bytes=max_bytes,
        files_used=0,
        bytes_used=0,
    )
    session.add(request)
    audit.record(
        session,
        Event.REQUEST_CREATED,
        now=now,
        actor=owner.email,
        subject=request.id,
        details={"max_files": max_files, "max_bytes": max_bytes},
    )
    session.commit()
    return request


def own(session: Session, owner: models.User, request_id: str) -> models.FileRequest:
    request = session.get(models.FileRequest, transfers.lookup_id(request_id))
    if request is None or request.owner_id != owner.id:
        raise NotFoundError(NOT_FOUND)
    return request


def seal(
    session: Session,
    owner: models.User,
    request_id: str,
    sealed: Sealed,
    *,
    now: datetime,
) -> models.FileRequest:
    """Open a draft for answers, with its document, its key and its senders' token's hash."""
    for part, name in ((sealed.document, "document"), (sealed.sealed_key, "sealed key")):
        if not part or len(part) > MAX_SEALED:
            raise UsageError(f"the {name} is empty or larger than {MAX_SEALED} bytes")
    if not MIN_SENDER_TOKEN <= len(sealed.sender_token) <= MAX_SENDER_TOKEN:
        raise UsageError("the sender token has the wrong length")
    request = own(session, owner, request_id)
    mine = models.FileRequest
    opened = session.execute(
        update(mine)
        .where(mine.id == request.id, mine.state == "draft", mine.expires_at > now)
        .values(
            document=sealed.document,
            sealed_key=sealed.sealed_key,
            sender_hash=token_hash(sealed.sender_token),
            state="open",
        )
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if getattr(opened, "rowcount", 0) != 1:
        raise ConflictError("this request is not a draft: it was sealed already, or has ended")
    session.refresh(request)
    return request


def listing(session: Session, owner: models.User, *, limit: int) -> list[models.FileRequest]:
    """The owner's requests, newest first, whatever their state."""
    mine = models.FileRequest
    stmt = (
        select(mine)
        .where(mine.owner_id == owner.id)
        .order_by(mine.created_at.desc(), mine.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def close(
    session: Session, owner: models.User, request_id: str, *, now: datetime
) -> models.FileRequest:
    """No more answers; those received stay in the inbox. Closing twice changes nothing."""
    request = own(session, owner, request_id)
    mine = models.FileRequest
    closed = session.execute(
        update(mine)
        .where(mine.id == request.id, mine.state != "closed")
        .values(state="closed", closed_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(closed, "rowcount", 0) == 1:
        audit.record(session, Event.REQUEST_CLOSED, now=now, actor=owner.email, subject=request.id)
    session.commit()
    session.refresh(request)
    return request


def open_request(
    session: Session, request_id: str, sender_token: str, *, now: datetime
) -> models.FileRequest:
    """A request as anyone holding its URL may read it: only while it accepts answers."""
    mine = models.FileRequest
    stmt = select(mine).where(
        mine.id == transfers.lookup_id(request_id),
        mine.sender_hash == token_hash(sender_token),
        mine.state == "open",
        mine.expires_at > now,
        mine.files_used < mine.max_files,
        mine.bytes_used < mine.max_bytes,
    )
    request = session.scalars(stmt).first()
    if request is None:
        raise NotFoundError(GONE)
    audit.record(
        session, Event.REQUEST_ACCESSED, now=now, actor=audit.ANONYMOUS, subject=request.id
    )
    session.commit()
    return request


def answer(
    session: Session,
    request_id: str,
    sender_token: str,
    sizes: Sequence[int],
    *,
    now: datetime,
    lifetime: timedelta,
    max_file_size: int,
) -> tuple[str, transfers.TransferView]:
    """Reserve room for files of these (ciphertext) sizes and make the answer's transfer; its
    guest token, shown this once, and the transfer."""
    if not 1 <= len(sizes) <= MAX_FILES or min(sizes) < 1:
        raise UsageError(f"an answer holds between 1 and {MAX_FILES} files, of 1 byte or more")
    if max(sizes) > max_file_size:
        raise UsageError("a file is larger than this server accepts")
    request_id = transfers.lookup_id(request_id)
    owner_id = _reserve(session, request_id, sender_token, sizes, now=now)
    transfer, _rows = transfers.add_transfer(
        session, None, "answer", sizes, now=now, expires_at=now + lifetime
    )
    session.add(models.TransferRecipient(transfer_id=transfer.id, user_id=owner_id, created_at=now))
    token = GUEST_PREFIX + secrets.token_urlsafe(32)
    session.add(
        models.RequestAnswer(
            transfer_id=transfer.id,
            request_id=request_id,
            token_hash=token_hash(token),
            created_at=now,
        )
    )
    view = transfers.view_of(session, transfer)
    session.commit()
    return token, view


def _reserve(
    session: Session, request_id: str, sender_token: str, sizes: Sequence[int], *, now: datetime
) -> int:
    """Count the files and bytes against the request's limits, in one statement that does
    nothing unless the sender holds the URL and the request is open, unexpired and stays
    within both; its owner."""
    mine, count, total = models.FileRequest, len(sizes), sum(sizes)
    reserved = session.execute(
        update(mine)
        .where(
            mine.id == request_id,
            mine.sender_hash == token_hash(sender_token),
            mine.state == "open",
            mine.expires_at > now,
            mine.files_used + count <= mine.max_files,
            mine.bytes_used + total <= mine.max_bytes,
        )
        .values(files_used=mine.files_used + count, bytes_used=mine.bytes_used + total)
        .execution_options(synchronize_session=False)
    )
    if getattr(reserved, "rowcount", 0) != 1:
        session.rollback()
        raise NotFoundError(GONE)
    request = session.get_one(mine, request_id, populate_existing=True)
    if request.files_used >= request.max_files or request.bytes_used >= request.max_bytes:
        audit.record(
            session, Event.REQUEST_EXHAUSTED, now=now, actor=audit.SERVER, subject=request_id
        )
    return request.owner_id


def guest(session: Session, token: str, *, now: datetime) -> transfers.Guest:
    """The guest a token stands for: only while its answer is being uploaded."""
    answer, request = models.RequestAnswer, models.FileRequest
    stmt = (
        select(answer.transfer_id)
        .join(models.Transfer, models.Transfer.id == answer.transfer_id)
        .join(request, request.id == answer.request_id)
        .where(
            answer.token_hash == token_hash(token),
            models.Transfer.state == "uploading",
            models.Transfer.expires_at > now,
            # A request closed or expired meanwhile takes nothing more, even what was reserved.
            request.state == "open",
            request.expires_at > now,
        )
    )
    found = session.scalars(stmt).first()
    if found is None:
        raise AuthError(
            "this guest token is not valid: its answer was sent or has expired, "
            "or the request was closed"
        )
    return transfers.Guest(found)


def release_abandoned(
    session: Session, blobs: BlobStore, *, now: datetime, grace: timedelta
) -> int:
    """Answers that will not be sent: past their expiry, or begun `grace` ago with no upload
    still alive, or whose request ended, while still being uploaded. Their reservation goes
    back to the request, and their transfer is revoked (its blobs deleted); the number."""
    answer, transfer, upload, request = (
        models.RequestAnswer,
        models.Transfer,
        models.Upload,
        models.FileRequest,
    )
    alive = select(upload.id).where(upload.transfer_id == transfer.id, upload.expires_at > now)
    stmt = (
        select(answer)
        .join(transfer, transfer.id == answer.transfer_id)
        .join(request, request.id == answer.request_id)
        .where(
            transfer.state == "uploading",
            or_(
                transfer.expires_at <= now,
                request.state != "open",
                request.expires_at <= now,
                and_(transfer.created_at <= now - grace, ~alive.exists()),
            ),
        )
    )
    found = list(session.scalars(stmt))
    for row in found:
        _release(session, blobs, row, now=now)
    return len(found)


def _release(
    session: Session, blobs: BlobStore, row: models.RequestAnswer, *, now: datetime
) -> None:
    files = list(
        session.scalars(
            select(models.TransferFile).where(models.TransferFile.transfer_id == row.transfer_id)
        )
    )
    mine = models.FileRequest
    count, total = len(files), sum(f.size or 0 for f in files)
    session.execute(
        update(mine)
        .where(mine.id == row.request_id)
        .values(files_used=mine.files_used - count, bytes_used=mine.bytes_used - total)
        .execution_options(synchronize_session=False)
    )
    transfer = session.get_one(models.Transfer, row.transfer_id)
    session.delete(row)  # in the same transaction: a reservation goes back once
    transfers.end(
        session, blobs, transfer, "revoked", now=now, actor=audit.SERVER, reason="abandoned"
    )
