"""Retention: what the server deletes, and when.

Every `purge_interval` (30 s by default, so within a minute of the event) the server:

1. gives back to their file request the answers that will not be sent (their blobs deleted);
2. purges transfers past their expiry (`transfer.expired`, then `transfer.purged`);
3. under the delete-after-download policy, purges transfers every recipient confirmed;
4. purges share links with no download left (`transfer.purged`, reason `exhausted`);
5. drops uploads abandoned for `upload_grace` (PLI_UPLOAD_GRACE, 24 h by default);
6. at most every SWEEP_EVERY, sweeps orphans: blobs and unfinished uploads the store holds but
   no row references (left by a crash between a commit and a deletion, by a switch of store,
   by an instance that died mid-upload), once they are older than `upload_grace`.

A purged transfer keeps only the metadata the audit log needs (who sent what to whom, when,
how large): its ciphertext, its manifest (the encrypted names and message) are deleted from
the blob store and the database. Revoking purges at once. `plan` says what a round would
delete without deleting it (`pli admin purge --dry-run`).

An orphan is deleted only if it is older than the grace AND unreferenced, checked again right
before it goes. A blob being completed is referenced by its upload's row (its key is the start
of the upload's token, see pli.store.blobs) until its file's row takes it over, so a sweep that
lists it at that moment keeps it.
"""

from __future__ import annotations

import itertools
import logging
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pli.durations import format_duration
from pli.server import policy
from pli.server.config import Settings
from pli.server.links import service as links
from pli.server.requests import service as file_requests
from pli.server.transfers import service as transfers
from pli.server.uploads import service as uploads
from pli.store import models
from pli.store.blobs import BlobStore, Listed
from pli.store.db import Database

log = logging.getLogger("pli.server.purge")

# Listing a whole store is slow and, on S3, billed: orphans are swept hourly, not every round.
SWEEP_EVERY = timedelta(hours=1)
REFERENCE_BATCH = 500  # keys checked against the database in one query
KEY_LENGTH = 32  # a blob's key is this much of its upload's token (see pli.store.blobs)
ORPHAN_BLOB, ORPHAN_UPLOAD = "orphan-blob", "orphan-upload"

# When each store was last swept by this process.
_swept: weakref.WeakKeyDictionary[BlobStore, datetime] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Item:
    """A transfer (or an upload) a purge round deletes, and why."""

    id: str
    reason: str  # expired | received | exhausted | abandoned-upload | orphan-blob | orphan-upload
    bytes: int
    expired_at: datetime | None = None


@dataclass
class Report:
    items: list[Item] = field(default_factory=list)
    released_answers: int = 0

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.items)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: each item, the total, the answers given back to their file request."""
        items = [
            {
                "id": item.id,
                "reason": item.reason,
                "bytes": item.bytes,
                "expired_at": item.expired_at.isoformat() if item.expired_at else None,
            }
            for item in self.items
        ]
        return {"items": items, "bytes": self.bytes, "released_answers": self.released_answers}


def _stored_bytes(session: Session, transfer_id: str) -> int:
    rows = session.scalars(
        select(models.TransferFile.size).where(
            models.TransferFile.transfer_id == transfer_id,
            models.TransferFile.blob_key.is_not(None),
        )
    )
    return sum(size or 0 for size in rows)


def plan(session: Session, blobs: BlobStore, settings: Settings, *, now: datetime) -> Report:
    """What a purge round would delete now (orphans included), without deleting anything."""
    report = _due(session, settings, now=now)
    report.items += orphans(session, blobs, older_than=now - settings.upload_grace)
    return report


def _due(session: Session, settings: Settings, *, now: datetime) -> Report:
    """The transfers and uploads whose time has come (orphans aside)."""
    rules = policy.current(session, settings)
    report = Report()
    for transfer in transfers.expired(session, now=now):
        report.items.append(
            Item(transfer.id, "expired", _stored_bytes(session, transfer.id), transfer.expires_at)
        )
    if rules.delete_after_download:
        for transfer in transfers.received_by_all(session):
            report.items.append(Item(transfer.id, "received", _stored_bytes(session, transfer.id)))
    for transfer in links.exhausted(session, now=now):
        report.items.append(Item(transfer.id, "exhausted", _stored_bytes(session, transfer.id)))
    for upload in uploads.abandoned(session, now=now):
        # A finished upload's bytes are its file's blob, counted with its transfer.
        stored = 0 if upload.completed_at is not None else upload.offset
        report.items.append(Item(upload.id, "abandoned-upload", stored))
    return report


def run(
    database: Database,
    blobs: BlobStore,
    settings: Settings,
    *,
    now: datetime,
    sweep: bool | None = None,
) -> Report:
    """One purge round: everything `plan` lists is deleted, and each purge recorded. Orphans
    are swept with `sweep`, or, if None, when this store was not swept for SWEEP_EVERY."""
    with database.session() as session:
        return run_in(session, blobs, settings, now=now, sweep=sweep)


def run_in(
    session: Session,
    blobs: BlobStore,
    settings: Settings,
    *,
    now: datetime,
    sweep: bool | None = None,
) -> Report:
    """`run`, in a session of the caller's."""
    rules = policy.current(session, settings)
    report = Report()
    report.released_answers = file_requests.release_abandoned(
        session, blobs, now=now, grace=settings.upload_grace
    )
    report.items += _due(session, settings, now=now).items
    transfers.purge_expired(session, blobs, now=now)
    if rules.delete_after_download:
        transfers.purge_received(session, blobs, now=now)
    links.purge(session, blobs, now=now)
    uploads.purge_abandoned(session, blobs, now=now)
    if sweep or (sweep is None and _sweep_due(blobs, now)):
        report.items += sweep_orphans(session, blobs, settings, now=now)
    _log(report)
    return report


# -- orphans -------------------------------------------------------------------------------


def orphans(session: Session, blobs: BlobStore, *, older_than: datetime) -> list[Item]:
    """The blobs and unfinished uploads older than `older_than` that no row references."""
    if not _ours(session, blobs, older_than):
        return []
    found = [
        Item(f.name, ORPHAN_BLOB, f.size)
        for f in _unreferenced(session, blobs.stored(older_than), _blobs_in_use)
    ]
    found += [
        Item(f.name, ORPHAN_UPLOAD, f.size)
        for f in _unreferenced(session, blobs.pending(older_than), _uploads_in_use)
    ]
    return found


def sweep_orphans(
    session: Session, blobs: BlobStore, settings: Settings, *, now: datetime
) -> list[Item]:
    """Delete the orphans older than the grace; each is checked again right before it goes."""
    older_than = now - settings.upload_grace
    removed: list[Item] = []
    _swept[blobs] = now  # a failed sweep is tried again in an hour, not at every round
    if not _ours(session, blobs, older_than):
        return removed
    for found in _unreferenced(session, blobs.stored(older_than), _blobs_in_use):
        if not _blobs_in_use(session, [found.name]):
            blobs.delete(found.name)
            removed.append(Item(found.name, ORPHAN_BLOB, found.size))
    for found in _unreferenced(session, blobs.pending(older_than), _uploads_in_use):
        if not _uploads_in_use(session, [found.name]):
            blobs.cancel(found.name)
            removed.append(Item(found.name, ORPHAN_UPLOAD, found.size))
    _log_sweep(removed, settings.upload_grace)
    return removed


def _sweep_due(blobs: BlobStore, now: datetime) -> bool:
    last = _swept.get(blobs)
    return last is None or now - last >= SWEEP_EVERY


def _ours(session: Session, blobs: BlobStore, older_than: datetime) -> bool:
    """Whether this database may judge what the store holds. One without a single transfer
    never referenced a blob: a store that holds some then belongs to another server (a shared
    bucket prefix, a missing PLI_DATABASE_URL), and nothing in it is ours to delete."""
    if session.scalars(select(models.Transfer.id).limit(1)).first() is not None:
        return True
    if next(blobs.stored(older_than), None) or next(blobs.pending(older_than), None):
        log.warning(
            "orphan sweep skipped: the blob store holds data but the database has no transfer; "
            "is this store shared with another server's database?"
        )
    return False


InUse = Callable[[Session, list[str]], set[str]]


def _unreferenced(session: Session, listed: Iterator[Listed], in_use: InUse) -> Iterator[Listed]:
    """What `listed` yields that no row references, checked a batch of names at a time."""
    while batch := list(itertools.islice(listed, REFERENCE_BATCH)):
        used = in_use(session, [f.name for f in batch])
        yield from (f for f in batch if f.name not in used)


def _blobs_in_use(session: Session, keys: list[str]) -> set[str]:
    files = select(models.TransferFile.blob_key).where(models.TransferFile.blob_key.in_(keys))
    made_by = func.substr(models.Upload.token, 1, KEY_LENGTH)
    completing = select(made_by).where(made_by.in_(keys))
    used = {k for k in session.scalars(files) if k} | set(session.scalars(completing))
    _end_read(session)
    return used


def _uploads_in_use(session: Session, tokens: list[str]) -> set[str]:
    used = set(session.scalars(select(models.Upload.token).where(models.Upload.token.in_(tokens))))
    _end_read(session)
    return used


def _end_read(session: Session) -> None:
    # A listing may take minutes: no transaction stays open (nor any snapshot is read from)
    # while it runs, so each check sees what is committed at that moment.
    session.commit()


def _log_sweep(removed: list[Item], grace: timedelta) -> None:
    blob_items = [item for item in removed if item.reason == ORPHAN_BLOB]
    log.info(
        "orphan sweep: deleted %d blob(s) (%d bytes) and %d unfinished upload(s), "
        "unreferenced and older than %s",
        len(blob_items),
        sum(item.bytes for item in blob_items),
        len(removed) - len(blob_items),
        format_duration(grace),
    )


def _log(report: Report) -> None:
    counts: dict[str, int] = {}
    for item in report.items:
        counts[item.reason] = counts.get(item.reason, 0) + 1
    if report.released_answers:
        log.info("released %d abandoned answer(s) to file requests", report.released_answers)
    for reason, count in sorted(counts.items()):
        log.info("purged %d item(s): %s", count, reason)
