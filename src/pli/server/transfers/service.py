"""Transfer lifecycle. Every read starts from `visible_to(user)`, or for a listing from one of
its halves, `sent_by(user)` or `addressed_to(user)`: a query that forgets a permission check
still cannot see another user's transfers.

A transfer is of one kind: "direct" (from an account to accounts), "link" (a share link's: no
recipients, see pli.server.links) or "answer" (sent through a file request by someone without
an account, to the request's owner; see pli.server.requests). Uploading is done by an `Actor`:
an account, for its own transfers, or a `Guest`, for the one answer its token unlocks.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeAlias

from sqlalchemy import Select, or_, select, tuple_, update
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.crypto.groups import parse_name as parse_group_name
from pli.errors import ConflictError, ForbiddenError, GoneError, NotFoundError, UsageError
from pli.server import notify
from pli.server.config import Settings
from pli.server.groups import service as group_service
from pli.server.keys.service import devices_of, user_by_email
from pli.server.transfers import cursor as cursors
from pli.store import models
from pli.store.blobs import BlobStore

MAX_FILES = 1000
MAX_RECIPIENTS = 500
MAX_MANIFEST = 4 << 20
NOT_FOUND = "no such transfer (or it is not addressed to you)"


def new_id() -> str:
    return secrets.token_hex(16)


_ID = re.compile(r"[0-9a-f]{32}")
_NO_ID = "-" * 32  # never an id: new_id writes hexadecimal


def lookup_id(text: str) -> str:
    """`text` if it can be an id, else one that matches nothing: a malformed id costs the same
    statements as an unknown one, and cannot make a query fail."""
    return text if _ID.fullmatch(text) else _NO_ID


def visible_to(user: models.User) -> Select[models.Transfer]:
    recipient_of = select(models.TransferRecipient.transfer_id).where(
        models.TransferRecipient.user_id == user.id
    )
    return select(models.Transfer).where(
        or_(models.Transfer.sender_id == user.id, models.Transfer.id.in_(recipient_of))
    )


def sent_by(user: models.User) -> Select[models.Transfer]:
    """The outbox half of `visible_to`."""
    return select(models.Transfer).where(models.Transfer.sender_id == user.id)


def addressed_to(user: models.User) -> Select[models.Transfer]:
    """The inbox half of `visible_to`, joined to the user's recipient rows (which an inbox
    is read from, in their index order)."""
    mine = models.TransferRecipient
    return (
        select(models.Transfer)
        .join(mine, mine.transfer_id == models.Transfer.id)
        .where(mine.user_id == user.id)
    )


@dataclass(frozen=True)
class Guest:
    """Someone without an account, answering a file request: their token unlocks the one
    transfer of that answer while it is being uploaded, and nothing else."""

    transfer_id: str


Actor: TypeAlias = models.User | Guest


@dataclass(frozen=True)
class TransferView:
    transfer: models.Transfer
    sender: str  # "" for an answer: its sender has no account
    recipients: list[str]
    files: list[models.TransferFile]
    request: str | None = None  # the file request an answer came through
    sender_service: bool = False  # sent by a service account (an unattended job)


def check_expiry(expires_in: timedelta, max_expiry: timedelta) -> None:
    if expires_in > max_expiry:
        raise UsageError(f"the expiry is above this server's maximum of {max_expiry.days} days")


def add_transfer(
    session: Session,
    sender_id: int | None,
    kind: str,
    sizes: Sequence[int | None],
    *,
    now: datetime,
    expires_at: datetime,
) -> tuple[models.Transfer, list[models.TransferFile]]:
    """A new transfer being uploaded, with one file per entry of `sizes` (the size each file
    must have, or None for any); flushed, not committed."""
    transfer = models.Transfer(
        id=new_id(),
        sender_id=sender_id,
        kind=kind,
        state="uploading",
        created_at=now,
        expires_at=expires_at,
    )
    session.add(transfer)
    session.flush()
    rows = [
        models.TransferFile(id=new_id(), transfer_id=transfer.id, position=i, size=size)
        for i, size in enumerate(sizes)
    ]
    session.add_all(rows)
    return transfer, rows


def create(
    session: Session,
    sender: models.User,
    recipients: list[str],
    files: int,
    expires_in: timedelta,
    *,
    now: datetime,
    max_expiry: timedelta,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> TransferView:
    """A direct transfer to `recipients` and to the members of `groups` (name -> the members
    the sender encrypted to, each checked to be a current member)."""
    direct = {email.strip().lower() for email in recipients}
    through = _through_groups(session, groups or {})
    if not direct | set(through) or len(direct | set(through)) > MAX_RECIPIENTS:
        raise UsageError(f"a transfer needs between 1 and {MAX_RECIPIENTS} recipients")
    if not 1 <= files <= MAX_FILES:
        raise UsageError(f"a transfer holds between 1 and {MAX_FILES} files")
    check_expiry(expires_in, max_expiry)
    users = {email: _recipient(session, email) for email in sorted(direct | set(through))}
    transfer, rows = add_transfer(
        session, sender.id, "direct", [None] * files, now=now, expires_at=now + expires_in
    )
    for email, user in users.items():
        session.add(
            models.TransferRecipient(
                transfer_id=transfer.id, user_id=user.id, created_at=now, direct=email in direct
            )
        )
        session.add_all(
            models.TransferRecipientGroup(transfer_id=transfer.id, user_id=user.id, group_id=g)
            for g in through.get(email, [])
        )
    details: dict[str, str | int | bool | None] = {
        "kind": "direct",
        "files": files,
        "recipients": len(users),
    }
    if groups:
        details["groups"] = len(groups)
    audit.record(
        session,
        Event.TRANSFER_CREATED,
        now=now,
        actor=sender.email,
        subject=transfer.id,
        details=details,
    )
    session.commit()
    service = sender.service_scopes is not None
    return TransferView(transfer, sender.email, sorted(users), rows, sender_service=service)


def _through_groups(session: Session, groups: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """email -> the ids of the groups of `groups` it is reached through. Each group is locked
    first, as a change to it is: a removal waits for this send to commit, then takes what
    reached the member through the group, this transfer included."""
    named: dict[str, set[str]] = {}
    for name, emails in groups.items():
        org, slug = parse_group_name(name)
        named.setdefault(f"{org}/{slug}", set()).update(e.strip().lower() for e in emails)
    records = [group_service.find(session, name) for name in sorted(named)]
    for record in sorted(records, key=lambda r: r.group.id):
        group_service.lock(session, record.group.id)
    through: dict[str, list[str]] = {}
    for name, members in sorted(named.items()):
        record = group_service.check_members(session, name, sorted(members))
        for email in members:
            through.setdefault(email, []).append(record.group.id)
    return through


def _recipient(session: Session, email: str) -> models.User:
    user = user_by_email(session, email)
    if user.service_scopes is not None and "receive" not in user.service_scopes.split():
        raise UsageError(f"{user.email} is a service account that sends only: it receives nothing")
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
    if transfer.state == "received":
        raise GoneError("this transfer was deleted once every recipient had downloaded it")
    if transfer.state not in ("uploading", "sealed") or transfer.purged_at is not None:
        raise GoneError("this transfer's files were deleted: it is no longer available")
    return view_of(session, transfer)


def view_of(session: Session, transfer: models.Transfer) -> TransferView:
    return views_of(session, [transfer])[0]


def views_of(session: Session, transfers: Sequence[models.Transfer]) -> list[TransferView]:
    """The views of `transfers`, in order: three queries however many there are (a fourth
    when answers to file requests are among them)."""
    if not transfers:
        return []
    ids = [t.id for t in transfers]
    senders, services = _senders(session, {t.sender_id for t in transfers})
    recipients: dict[str, list[str]] = {i: [] for i in ids}
    stmt = (
        select(models.TransferRecipient.transfer_id, models.User.email)
        .join(models.User, models.TransferRecipient.user_id == models.User.id)
        .where(models.TransferRecipient.transfer_id.in_(ids))
        .order_by(models.User.email)
    )
    for transfer_id, email in session.execute(stmt):
        recipients[transfer_id].append(email)
    files: dict[str, list[models.TransferFile]] = {i: [] for i in ids}
    rows = (
        select(models.TransferFile)
        .where(models.TransferFile.transfer_id.in_(ids))
        .order_by(models.TransferFile.transfer_id, models.TransferFile.position)
    )
    for row in session.scalars(rows):
        files[row.transfer_id].append(row)
    requests = _requests_of(session, [t.id for t in transfers if t.kind == "answer"])
    return [
        TransferView(
            t,
            senders.get(t.sender_id, ""),
            recipients[t.id],
            files[t.id],
            requests.get(t.id),
            sender_service=t.sender_id in services,
        )
        for t in transfers
    ]


def _senders(
    session: Session, ids: set[int | None]
) -> tuple[dict[int | None, str], set[int | None]]:
    """The emails of these accounts, and which of them are service accounts."""
    named = select(models.User.id, models.User.email, models.User.service_scopes).where(
        models.User.id.in_([i for i in ids if i is not None])
    )
    emails: dict[int | None, str] = {}
    services: set[int | None] = set()
    for account, email, service_scopes in session.execute(named):
        emails[account] = email
        if service_scopes is not None:
            services.add(account)
    return emails, services


def _requests_of(session: Session, answers: list[str]) -> dict[str, str]:
    """The file request of each answer: one query, none when there is no answer."""
    if not answers:
        return {}
    stmt = select(models.RequestAnswer.transfer_id, models.RequestAnswer.request_id).where(
        models.RequestAnswer.transfer_id.in_(answers)
    )
    return {row.transfer_id: row.request_id for row in session.execute(stmt)}


def own_uploading(
    session: Session, actor: Actor, transfer_id: str, *, now: datetime
) -> models.Transfer:
    """A transfer the actor is uploading: one of the user's own, or the guest's answer."""
    if isinstance(actor, Guest):
        return _guest_uploading(session, actor, transfer_id, now=now)
    view = get_visible(session, actor, transfer_id, now=now)
    if view.transfer.sender_id != actor.id:
        raise ForbiddenError("only the sender can change a transfer")
    if view.transfer.state != "uploading":
        raise ConflictError("this transfer is already sealed")
    return view.transfer


def _guest_uploading(
    session: Session, guest: Guest, transfer_id: str, *, now: datetime
) -> models.Transfer:
    transfer = None
    if transfer_id == guest.transfer_id:
        transfer = session.get(models.Transfer, transfer_id)
    if transfer is None or transfer.state != "uploading" or transfer.expires_at <= now:
        raise NotFoundError(NOT_FOUND)
    return transfer


def upload_target(
    session: Session, actor: Actor, transfer_id: str, file_id: str, *, now: datetime
) -> models.TransferFile:
    own_uploading(session, actor, transfer_id, now=now)
    row = session.get(models.TransferFile, file_id)
    if row is None or row.transfer_id != transfer_id:
        raise NotFoundError("no such file in this transfer")
    return row


def attach_blob(
    session: Session, blobs: BlobStore, row: models.TransferFile, key: str, size: int
) -> None:
    """The file's blob, complete; one it replaces is deleted. Its integrity is the signed
    manifest's business: every recipient checks the ciphertext digest the sender signed."""
    old = row.blob_key
    row.blob_key, row.size, row.sha256 = key, size, None
    session.commit()
    if old is not None:
        blobs.delete(old)


def seal(
    session: Session,
    actor: Actor,
    transfer_id: str,
    manifest: bytes,
    *,
    now: datetime,
    settings: Settings,
) -> TransferView:
    if not manifest or len(manifest) > MAX_MANIFEST:
        raise UsageError("the manifest is empty or too large")
    transfer = own_uploading(session, actor, transfer_id, now=now)
    view = view_of(session, transfer)
    if any(f.blob_key is None for f in view.files):
        raise ConflictError("some files of this transfer have not been uploaded")
    transfer.manifest, transfer.state, transfer.sealed_at = manifest, "sealed", now
    audit.record(
        session,
        Event.TRANSFER_SEALED,
        now=now,
        actor=actor_name(actor),
        subject=transfer.id,
        details={"kind": transfer.kind, "bytes": sum(f.size or 0 for f in view.files)},
    )
    if view.request is not None:
        audit.record(
            session, Event.REQUEST_ANSWERED, now=now, actor=audit.ANONYMOUS, subject=view.request
        )
    if transfer.kind == "direct":
        notify.transfer_arrived(session, settings, view, now=now)
    session.commit()
    return view


@dataclass(frozen=True)
class Page:
    views: list[TransferView]
    next_cursor: str | None  # None: this page is the last


def listing(
    session: Session,
    user: models.User,
    box: str,
    *,
    now: datetime,
    limit: int,
    cursor: str | None = None,
) -> Page:
    """The sealed, unexpired transfers of the user's inbox or outbox, newest first: `limit` of
    them, after the position `cursor` holds. Keyset pagination on (created_at, id), read in the
    order of an index (see models.Transfer and models.TransferRecipient): a page costs the
    same however deep it is and however many transfers the user has, in four queries."""
    after = cursors.decode(cursor, box) if cursor is not None else None
    transfers = list(session.scalars(listing_query(user, box, now=now, after=after, limit=limit)))
    if len(transfers) <= limit:
        return Page(views_of(session, transfers), None)
    last = transfers[limit - 1]
    following = cursors.encode(cursors.Position(box, last.created_at, last.id))
    return Page(views_of(session, transfers[:limit]), following)


def listing_query(
    user: models.User, box: str, *, now: datetime, after: cursors.Position | None, limit: int
) -> Select[models.Transfer]:
    """The query behind a page of `listing`: one row more than `limit`, to know whether
    another page follows."""
    if box == "outbox":  # links are listed apart (pli.server.links)
        stmt = sent_by(user).where(models.Transfer.kind == "direct")
        created, key = models.Transfer.created_at, models.Transfer.id
    else:
        stmt = addressed_to(user)
        created, key = models.TransferRecipient.created_at, models.TransferRecipient.transfer_id
    stmt = stmt.where(models.Transfer.state == "sealed", models.Transfer.expires_at > now)
    if after is not None:
        stmt = stmt.where(tuple_(created, key) < (after.created_at, after.id))
    return stmt.order_by(created.desc(), key.desc()).limit(limit + 1)


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
    audit.record(session, Event.TRANSFER_REVOKED, now=now, actor=user.email, subject=transfer_id)
    end(session, blobs, view.transfer, "revoked", now=now, actor=user.email, reason="revoked")


def actor_name(actor: Actor) -> str:
    """How the audit log names who acted: an account's address, or `anonymous`."""
    return actor.email if isinstance(actor, models.User) else audit.ANONYMOUS


def end(
    session: Session,
    blobs: BlobStore,
    transfer: models.Transfer,
    state: str,
    *,
    now: datetime,
    actor: str,
    reason: str,
) -> None:
    """Purge a transfer now: its files and its manifest (the encrypted names and message) are
    deleted, and the purge recorded; the metadata the audit log needs stays. Committed. A
    transfer another purge got to first (two last receipts at once, a revocation racing the
    expiry) is left to it: nothing is recorded twice."""
    files = view_of(session, transfer).files
    audit.record(
        session,
        Event.TRANSFER_PURGED,
        now=now,
        actor=actor,
        subject=transfer.id,
        details={
            "reason": reason,
            "files": sum(1 for f in files if f.blob_key is not None),
            "bytes": sum(f.size or 0 for f in files if f.blob_key is not None),
        },
    )
    mine = models.Transfer
    ended = session.execute(
        update(mine)
        .where(mine.id == transfer.id, mine.purged_at.is_(None))
        .values(state=state, manifest=None, purged_at=now)
        .execution_options(synchronize_session=False)
    )
    if getattr(ended, "rowcount", 0) != 1:
        session.rollback()  # and the record with it
        return
    session.refresh(transfer)
    drop_blobs(session, blobs, files)


def drop_blobs(session: Session, blobs: BlobStore, files: list[models.TransferFile]) -> None:
    keys = [f.blob_key for f in files if f.blob_key is not None]
    for row in files:
        row.blob_key = None
    session.commit()
    for key in keys:
        blobs.delete(key)


def expired(session: Session, *, now: datetime) -> list[models.Transfer]:
    """Transfers past their expiry whose files are still stored."""
    stmt = select(models.Transfer).where(
        models.Transfer.expires_at <= now, models.Transfer.state.in_(("uploading", "sealed"))
    )
    return list(session.scalars(stmt))


def purge_expired(session: Session, blobs: BlobStore, *, now: datetime) -> int:
    """Delete the blobs of every transfer past its expiry; the metadata stays for audit."""
    found = expired(session, now=now)
    for transfer in found:
        audit.record(
            session, Event.TRANSFER_EXPIRED, now=now, actor=audit.SERVER, subject=transfer.id
        )
        end(session, blobs, transfer, "expired", now=now, actor=audit.SERVER, reason="expired")
    return len(found)


def _recipient_row(
    session: Session, user: models.User, transfer_id: str
) -> models.TransferRecipient:
    row = session.get(models.TransferRecipient, (transfer_id, user.id))
    if row is None:
        raise ForbiddenError("only a recipient of this transfer can do this")
    return row


def receive(
    session: Session, user: models.User, transfer_id: str, *, now: datetime, settings: Settings
) -> bool:
    """A recipient's client confirms it has every file, authenticated: recorded, and a receipt
    mailed to the sender, the first time. True when every recipient has now confirmed."""
    view = get_visible(session, user, transfer_id, now=now)
    if view.transfer.state != "sealed":
        raise NotFoundError(NOT_FOUND)
    row = _recipient_row(session, user, transfer_id)
    if row.received_at is None:
        row.received_at = now
        audit.record(
            session, Event.TRANSFER_RECEIVED, now=now, actor=user.email, subject=transfer_id
        )
        if view.sender:
            notify.transfer_received(session, settings, view, user.email, now=now)
        session.commit()
    return all_received(session, transfer_id)


def all_received(session: Session, transfer_id: str) -> bool:
    waiting = select(models.TransferRecipient.user_id).where(
        models.TransferRecipient.transfer_id == transfer_id,
        models.TransferRecipient.received_at.is_(None),
    )
    return session.scalars(waiting).first() is None


def received_by_all(session: Session) -> list[models.Transfer]:
    """Sealed transfers every recipient has confirmed: what delete-after-download purges."""
    waiting = select(models.TransferRecipient.transfer_id).where(
        models.TransferRecipient.received_at.is_(None)
    )
    any_recipient = select(models.TransferRecipient.transfer_id)
    stmt = select(models.Transfer).where(
        models.Transfer.state == "sealed",
        models.Transfer.id.in_(any_recipient),
        models.Transfer.id.not_in(waiting),
    )
    return list(session.scalars(stmt))


def purge_received(session: Session, blobs: BlobStore, *, now: datetime) -> int:
    """Under delete-after-download: purge every transfer all its recipients have."""
    found = received_by_all(session)
    for transfer in found:
        end(session, blobs, transfer, "received", now=now, actor=audit.SERVER, reason="received")
    return len(found)


def report_failure(
    session: Session, user: models.User, transfer_id: str, reason: str, *, now: datetime
) -> None:
    """A recipient's client could not decrypt or authenticate what it downloaded: recorded
    (flushed, not committed), for the alerts and the administrator."""
    view = get_visible(session, user, transfer_id, now=now)
    _recipient_row(session, user, view.transfer.id)
    audit.record(
        session,
        Event.TRANSFER_DECRYPT_FAILED,
        now=now,
        actor=user.email,
        subject=transfer_id,
        details={"reason": reason},
    )


def record_download(
    session: Session,
    user: models.User | None,
    transfer_id: str,
    file_id: str,
    *,
    now: datetime,
    first: int,
    sent: int,
) -> None:
    """One answered download request of a file's ciphertext (whole, or a range): recorded,
    flushed, not committed."""
    audit.record(
        session,
        Event.TRANSFER_DOWNLOADED,
        now=now,
        actor=user.email if user is not None else audit.ANONYMOUS,
        subject=transfer_id,
        details={"file": file_id, "first": first, "bytes": sent},
    )
