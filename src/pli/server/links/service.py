"""Share links: a transfer of kind "link", without recipients, whose files are encrypted to a
key only the link's URL holds. Whoever has the URL downloads them without an account.

A download starts by taking a ticket: one conditional UPDATE counts it against the link's
limit, so that concurrent callers can never take more downloads than the link allows. The
ticket (stored as its SHA-256 only) then opens the link's files until it expires, to resume
an interrupted download without using another.

What anyone may ask without an account fails in one way, whatever the reason (an unknown or
malformed id, a link not sealed, expired, revoked or exhausted, a missing, wrong or expired
ticket, another link's ticket), after one indexed statement holding every condition.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, or_, select, update
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.errors import NotFoundError, UsageError
from pli.server.auth.service import token_hash
from pli.server.transfers import service as transfers
from pli.store import models
from pli.store.blobs import BlobStore

TICKET_PREFIX = "pli_ticket_"
TICKET_LIFETIME = timedelta(hours=24)
MAX_DOWNLOADS = 1_000_000
NOT_FOUND = "no such link"
GONE = "this link does not exist or is no longer available"


@dataclass(frozen=True)
class LinkView:
    link: models.Link
    view: transfers.TransferView
    state: str  # uploading, active, exhausted, revoked or expired

    @property
    def downloads_left(self) -> int | None:
        if self.link.max_downloads is None:
            return None
        return max(0, self.link.max_downloads - self.link.downloads)


def state_of(link: models.Link, transfer: models.Transfer, now: datetime) -> str:
    if transfer.state in ("revoked", "exhausted"):
        return transfer.state
    if transfer.state == "expired" or transfer.expires_at <= now:
        return "expired"
    if transfer.state == "uploading":
        return "uploading"
    if link.max_downloads is not None and link.downloads >= link.max_downloads:
        return "exhausted"
    return "active"


def create(
    session: Session,
    owner: models.User,
    files: int,
    expires_in: timedelta,
    max_downloads: int | None,
    *,
    now: datetime,
    max_expiry: timedelta,
) -> LinkView:
    if not 1 <= files <= transfers.MAX_FILES:
        raise UsageError(f"a link holds between 1 and {transfers.MAX_FILES} files")
    if max_downloads is not None and not 1 <= max_downloads <= MAX_DOWNLOADS:
        raise UsageError(f"a link allows between 1 and {MAX_DOWNLOADS} downloads")
    transfers.check_expiry(expires_in, max_expiry)
    transfer, _rows = transfers.add_transfer(
        session, owner.id, "link", [None] * files, now=now, expires_at=now + expires_in
    )
    link = models.Link(id=transfer.id, max_downloads=max_downloads, downloads=0, created_at=now)
    session.add(link)
    view = transfers.view_of(session, transfer)
    audit.record(
        session,
        Event.LINK_CREATED,
        now=now,
        actor=owner.email,
        subject=transfer.id,
        details={"files": files, "max_downloads": max_downloads},
    )
    session.commit()
    return LinkView(link, view, state_of(link, transfer, now))


def _owned(owner: models.User) -> Select[models.Transfer, models.Link]:
    return (
        transfers.sent_by(owner)
        .join(models.Link, models.Link.id == models.Transfer.id)
        .add_columns(models.Link)
    )


def listing(session: Session, owner: models.User, *, now: datetime, limit: int) -> list[LinkView]:
    """The owner's links, newest first, whatever their state."""
    stmt = (
        _owned(owner)
        .order_by(models.Transfer.created_at.desc(), models.Transfer.id.desc())
        .limit(limit)
        # Download counts move in UPDATEs the session does not see: read them afresh.
        .execution_options(populate_existing=True)
    )
    rows = list(session.execute(stmt))
    views = transfers.views_of(session, [transfer for transfer, _link in rows])
    return [
        LinkView(link, view, state_of(link, transfer, now))
        for (transfer, link), view in zip(rows, views, strict=True)
    ]


def revoke(
    session: Session, blobs: BlobStore, owner: models.User, link_id: str, *, now: datetime
) -> None:
    """End a link at once: its files and manifest are deleted, its tickets too. Revoking a
    revoked link changes nothing."""
    stmt = _owned(owner).where(models.Transfer.id == transfers.lookup_id(link_id))
    found = session.execute(stmt).first()
    if found is None:
        raise NotFoundError(NOT_FOUND)
    transfer, link = found
    session.execute(delete(models.LinkTicket).where(models.LinkTicket.link_id == link.id))
    if transfer.state == "revoked":
        session.commit()
        return
    audit.record(session, Event.LINK_REVOKED, now=now, actor=owner.email, subject=link.id)
    transfers.end(session, blobs, transfer, "revoked", now=now, actor=owner.email, reason="revoked")


def take_ticket(
    session: Session, link_id: str, *, now: datetime
) -> tuple[str, datetime, transfers.TransferView]:
    """One download of the link: (the ticket, shown this once; when it expires; the link's
    transfer). Counted by a single conditional UPDATE, which changes nothing unless the link
    is sealed, unexpired and has a download left."""
    link_id = transfers.lookup_id(link_id)
    live = select(models.Transfer.id).where(
        models.Transfer.id == link_id,
        models.Transfer.state == "sealed",
        models.Transfer.expires_at > now,
    )
    taken = session.execute(
        update(models.Link)
        .where(
            models.Link.id == link_id,
            or_(
                models.Link.max_downloads.is_(None),
                models.Link.downloads < models.Link.max_downloads,
            ),
            live.exists(),
        )
        .values(downloads=models.Link.downloads + 1)
        .execution_options(synchronize_session=False)
    )
    if getattr(taken, "rowcount", 0) != 1:
        session.rollback()
        raise NotFoundError(GONE)
    transfer = session.get_one(models.Transfer, link_id)
    ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
    expires = min(now + TICKET_LIFETIME, transfer.expires_at)
    session.add(
        models.LinkTicket(
            token_hash=token_hash(ticket), link_id=link_id, created_at=now, expires_at=expires
        )
    )
    view = transfers.view_of(session, transfer)
    link = session.get_one(models.Link, link_id, populate_existing=True)
    audit.record(
        session,
        Event.LINK_ACCESSED,
        now=now,
        actor=audit.ANONYMOUS,
        subject=link_id,
        details={"download": link.downloads},
    )
    if link.max_downloads is not None and link.downloads >= link.max_downloads:
        audit.record(session, Event.LINK_EXHAUSTED, now=now, actor=audit.SERVER, subject=link_id)
    session.commit()
    return ticket, expires, view


def _ticketed(link_id: str, ticket: str, now: datetime) -> Select[models.Transfer, datetime]:
    """The link's transfer with the ticket's expiry, if the ticket opens it now."""
    return (
        select(models.Transfer, models.LinkTicket.expires_at)
        .join(models.LinkTicket, models.LinkTicket.link_id == models.Transfer.id)
        .where(
            models.LinkTicket.token_hash == token_hash(ticket),
            models.LinkTicket.link_id == transfers.lookup_id(link_id),
            models.LinkTicket.expires_at > now,
            models.Transfer.state == "sealed",
            models.Transfer.expires_at > now,
        )
    )


def by_ticket(
    session: Session, link_id: str, ticket: str, *, now: datetime
) -> tuple[datetime, transfers.TransferView]:
    """(when the ticket expires, the link's transfer), for a download being resumed."""
    found = session.execute(_ticketed(link_id, ticket, now)).first()
    if found is None:
        raise NotFoundError(GONE)
    transfer, expires = found
    return expires, transfers.view_of(session, transfer)


def file_by_ticket(
    session: Session, link_id: str, file_id: str, ticket: str, *, now: datetime
) -> str:
    """The blob key of one of the link's files, if the ticket opens the link now."""
    stmt = (
        _ticketed(link_id, ticket, now)
        .join(models.TransferFile, models.TransferFile.transfer_id == models.Transfer.id)
        .where(
            models.TransferFile.id == transfers.lookup_id(file_id),
            models.TransferFile.blob_key.is_not(None),
        )
        .with_only_columns(models.TransferFile.blob_key)
    )
    key = session.scalars(stmt).first()
    if key is None:
        raise NotFoundError(GONE)
    return key


def exhausted(session: Session, *, now: datetime) -> list[models.Transfer]:
    """Links with no download left and no ticket still running."""
    running = select(models.LinkTicket.link_id).where(models.LinkTicket.expires_at > now)
    stmt = (
        select(models.Transfer)
        .join(models.Link, models.Link.id == models.Transfer.id)
        .where(
            models.Transfer.state == "sealed",
            models.Link.max_downloads.is_not(None),
            models.Link.downloads >= models.Link.max_downloads,
            models.Link.id.not_in(running),
        )
    )
    return list(session.scalars(stmt))


def purge(session: Session, blobs: BlobStore, *, now: datetime) -> int:
    """Delete the tickets that have expired or whose link has ended; then the files and
    manifest of every link that has no download left and no ticket still running (its
    transfer becomes "exhausted"). The number of links emptied."""
    ended = select(models.Transfer.id).where(models.Transfer.state != "sealed")
    session.execute(
        delete(models.LinkTicket).where(
            or_(models.LinkTicket.expires_at <= now, models.LinkTicket.link_id.in_(ended))
        )
    )
    session.commit()
    emptied = exhausted(session, now=now)
    for transfer in emptied:
        transfers.end(
            session, blobs, transfer, "exhausted", now=now, actor=audit.SERVER, reason="exhausted"
        )
    return len(emptied)
