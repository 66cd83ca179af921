"""The key log in the database (docs/spec/key-log.md): entries are appended in the caller's
transaction, with the change they record, and committed or rolled back with it.

Appends queue behind each other on the single `key_log_head` row, as audit records do on
`audit_head`: the first statement of an append bumps the size, which takes the database's write
lock (SQLite) or the row's lock (PostgreSQL), so two transactions never claim the same index.
A transaction that also records an audit event appends to the key log first: every transaction
takes the two locks in that order and none waits for another in a cycle.

Every append stores its leaf and the perfect subtrees it completes (about two per entry), so a
root, an inclusion proof or a consistency proof reads O(log n) rows in one query."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from pli.crypto import keylog, merkle
from pli.crypto.checkpoints import ServerKey
from pli.errors import IntegrityError, UsageError
from pli.store import models

MAX_ENTRIES = 1000  # per listing


def append(session: Session, entry: keylog.Entry) -> int:
    """Append `entry` in `session`'s transaction (flushed, not committed); its index."""
    bump = (
        update(models.KeyLogHead)
        .where(models.KeyLogHead.id == 1)
        .values(size=models.KeyLogHead.size + 1)
        .returning(models.KeyLogHead.size)
    )
    with session.no_autoflush:
        index = session.execute(bump).scalar_one() - 1
        frontier = merkle.Frontier.load(index, _reader(session))
    leaf = entry.encode()
    session.add(models.KeyLogEntry(idx=index, leaf=leaf))
    for (level, position), digest in frontier.append(merkle.leaf_hash(leaf)):
        session.add(models.KeyLogNode(level=level, idx=position, hash=digest))
    session.flush()
    return index


def size(session: Session) -> int:
    row = session.get(models.KeyLogHead, 1)
    return 0 if row is None else row.size


def head(session: Session, key: ServerKey, now: datetime) -> keylog.TreeHead:
    """A freshly signed head of the log as it is now."""
    count = size(session)
    return key.sign_key_log_head(count, merkle.tree_root(count, _reader(session)), now)


def inclusion_proof(session: Session, index: int, tree_size: int) -> list[bytes]:
    return merkle.inclusion_proof(index, tree_size, _reader(session))


def consistency_proof(session: Session, old: int, new: int) -> list[bytes]:
    return merkle.consistency_proof(old, new, _reader(session))


def leaves(session: Session, start: int, end: int) -> list[bytes]:
    """The leaves of entries [start, end), in order."""
    if not 0 <= start <= end or end - start > MAX_ENTRIES:
        raise UsageError(f"ask for at most {MAX_ENTRIES} key log entries from index 0 on")
    stmt = (
        select(models.KeyLogEntry.leaf)
        .where(models.KeyLogEntry.idx >= start, models.KeyLogEntry.idx < end)
        .order_by(models.KeyLogEntry.idx)
    )
    return list(session.scalars(stmt))


def leaf(session: Session, index: int) -> bytes:
    row = session.get(models.KeyLogEntry, index)
    if row is None:
        raise IntegrityError(f"the key log has no entry {index}")
    return row.leaf


def _reader(session: Session) -> merkle.NodeReader:
    def read(nodes: Sequence[merkle.Node]) -> list[bytes]:
        if not nodes:
            return []
        node = models.KeyLogNode
        stmt = select(node.level, node.idx, node.hash).where(
            or_(*(and_(node.level == level, node.idx == index) for level, index in nodes))
        )
        found = {(level, index): digest for level, index, digest in session.execute(stmt)}
        try:
            return [found[n] for n in nodes]
        except KeyError as exc:
            raise IntegrityError(f"the key log store lacks node {exc.args[0]}") from exc

    return read
