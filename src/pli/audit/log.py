"""The audit log in the database: `record` is the one way an event gets into it.

A record is appended inside the caller's transaction, so it is committed with the action it
describes, or rolled back with it. An event whose action fails (a refused login) is recorded in
a session of its own (`pli.server.auth.service.login_failed`).

Appends queue behind each other on the single `audit_head` row: the first statement of an
append is an UPDATE of that row, which takes the database's write lock (SQLite) or the row's
lock (PostgreSQL) before the previous head is read, so two transactions never chain onto the
same record.

The client address comes from the request being served (`pli.server.deps.client_address`,
set by `at_address` around each request); background work records none.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from pli.audit.chain import Detail, Event, Record, following, format_time
from pli.crypto.signing import canonical_json
from pli.store import models

_address: ContextVar[str | None] = ContextVar("pli_audit_address", default=None)

# How the log names who acted, besides an account's address.
SERVER = "server"  # the server itself: expiry, purge, alerts
ANONYMOUS = "anonymous"  # someone without an account: a link's downloader, a request's sender


@contextlib.contextmanager
def at_address(address: str | None) -> Iterator[None]:
    """Record `address` as the client address of every event recorded within."""
    token = _address.set(address)
    try:
        yield
    finally:
        _address.reset(token)


def current_address() -> str | None:
    return _address.get()


def record(
    session: Session,
    event: Event,
    *,
    now: datetime,
    actor: str | None,
    subject: str | None = None,
    details: Mapping[str, Detail] | None = None,
) -> Record:
    """Append one record in `session`'s transaction (flushed, not committed)."""
    bump = (
        update(models.AuditHead)
        .where(models.AuditHead.id == 1)
        .values(seq=models.AuditHead.seq + 1)
        .returning(models.AuditHead.seq, models.AuditHead.hash)
    )
    # The head is locked before the caller's pending changes are flushed: every transaction
    # that records takes its locks in the same order, head first, and cannot deadlock another.
    with session.no_autoflush:
        seq, head = session.execute(bump).one()
    entry = following(
        seq - 1,
        head,
        time=now,
        event=event,
        actor=actor,
        subject=subject,
        address=_address.get(),
        details=details,
    )
    session.add(
        models.AuditEntry(
            seq=entry.seq,
            time=entry.time,
            event=str(entry.event),
            actor=entry.actor,
            subject=entry.subject,
            address=entry.address,
            details=canonical_json(entry.details).decode("utf-8"),
            prev=entry.prev,
            hash=entry.hash,
        )
    )
    session.execute(
        update(models.AuditHead).where(models.AuditHead.id == 1).values(hash=entry.hash)
    )
    session.flush()
    return entry


def to_record(row: models.AuditEntry) -> Record:
    """A stored row as a chain record. A row whose event or details were tampered with into
    something unreadable still comes back, with an event the chain refuses, so `verify` names
    it instead of this failing."""
    try:
        details = json.loads(row.details)
    except (ValueError, RecursionError):
        details = {"unreadable": row.details}
    try:
        event: Event | str = Event(row.event)
    except ValueError:
        event = row.event
    return Record(
        seq=row.seq,
        time=row.time,
        event=event,  # type: ignore[arg-type]  # checked by verify
        actor=row.actor,
        subject=row.subject,
        address=row.address,
        details=details if isinstance(details, dict) else {"unreadable": row.details},
        prev=row.prev,
        hash=row.hash,
    )


def records(
    session: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    batch: int = 1000,
) -> Iterator[Record]:
    """Every record in seq order (or those with since <= time < until), read in batches."""
    stmt = select(models.AuditEntry).order_by(models.AuditEntry.seq)
    if since is not None:
        stmt = stmt.where(models.AuditEntry.time >= format_time(since))
    if until is not None:
        stmt = stmt.where(models.AuditEntry.time < format_time(until))
    for row in session.scalars(stmt.execution_options(yield_per=batch)):
        yield to_record(row)


def head(session: Session) -> tuple[int, str]:
    """The log's length and head hash, as the head row has them."""
    row = session.get(models.AuditHead, 1)
    if row is None:
        return 0, "0" * 64
    return row.seq, row.hash
