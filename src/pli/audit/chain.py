"""The audit log's hash chain: typed records, each committing to the one before it.

    hash = hex(SHA-256(b"pli/audit/v1\\n" || canonical_json(every field but "hash")))

Record 1 has `prev == GENESIS`; record n has `seq == n` and `prev` equal to record n-1's hash.
Editing a record breaks its own hash; recomputing that hash breaks the next record's `prev`;
rewriting the whole tail consistently is what signed checkpoints, kept outside the server,
catch: a checkpoint names the head hash the log had at a given length.

`verify` reads the records once, in order, in constant memory (plus the checkpoints), and
reports the first problem with its kind and the seq it concerns:

    modified   a record's hash does not match its content, or a record does not chain onto the
               one before it although its seq is right (one of the two was rewritten and
               re-hashed); seq: that record
    deleted    records are missing; seq: the first missing one
    reordered  a record is out of place and the missing one turns up later; seq: the first
               position out of place
    inserted   an extra record: two records claim one seq, or one claims a seq the log does not
               reach; seq: where the extra record sits
    rewritten  the record at a checkpoint's length does not have the checkpoint's head hash
    truncated  a checkpoint's length is beyond the last record; seq: the first missing one
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal

from pli.crypto.checkpoints import Checkpoint
from pli.crypto.signing import canonical_json
from pli.errors import CryptoError, UsageError

GENESIS = "0" * 64
DOMAIN = b"pli/audit/v1\n"

Detail = str | int | bool | None
ProblemKind = Literal["modified", "deleted", "inserted", "reordered", "truncated", "rewritten"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z")


class Event(StrEnum):
    """Every kind of event the log records. The names are part of the record format."""

    AUTH_LOGIN_SUCCEEDED = "auth.login.succeeded"
    AUTH_LOGIN_FAILED = "auth.login.failed"
    AUTH_SECOND_FACTOR_CHANGED = "auth.second_factor.changed"
    AUTH_PASSWORD_CHANGED = "auth.password.changed"  # noqa: S105  (an event name)
    AUTH_TOKEN_CREATED = "auth.token.created"  # noqa: S105
    AUTH_TOKEN_REVOKED = "auth.token.revoked"  # noqa: S105
    KEYS_PUBLISHED = "keys.published"
    KEYS_CHANGED = "keys.changed"
    TRANSFER_CREATED = "transfer.created"
    TRANSFER_SEALED = "transfer.sealed"
    TRANSFER_DOWNLOADED = "transfer.downloaded"
    TRANSFER_RECEIVED = "transfer.received"
    TRANSFER_DECRYPT_FAILED = "transfer.decrypt_failed"
    TRANSFER_REVOKED = "transfer.revoked"
    TRANSFER_EXPIRED = "transfer.expired"
    TRANSFER_PURGED = "transfer.purged"
    LINK_CREATED = "link.created"
    LINK_ACCESSED = "link.accessed"
    LINK_EXHAUSTED = "link.exhausted"
    LINK_REVOKED = "link.revoked"
    REQUEST_CREATED = "request.created"
    REQUEST_ACCESSED = "request.accessed"
    REQUEST_ANSWERED = "request.answered"
    REQUEST_EXHAUSTED = "request.exhausted"
    REQUEST_CLOSED = "request.closed"
    ADMIN_ACTION = "admin.action"
    GROUP_CHANGED = "group.changed"
    POLICY_CHANGED = "policy.changed"
    ALERT_RAISED = "alert.raised"
    ALERT_CLEARED = "alert.cleared"


_EVENTS = frozenset(event.value for event in Event)


@dataclass(frozen=True)
class Record:
    seq: int
    time: str
    event: Event
    actor: str | None
    subject: str | None
    address: str | None
    details: dict[str, Detail]
    prev: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-ready (the event as its dotted name)."""
        return {
            "seq": self.seq,
            "time": self.time,
            "event": str(self.event),
            "actor": self.actor,
            "subject": self.subject,
            "address": self.address,
            "details": dict(self.details),
            "prev": self.prev,
            "hash": self.hash,
        }


def record_hash(fields: Mapping[str, Any]) -> str:
    """The hash of a record given as a mapping of its fields; a "hash" field is left out."""
    body = {name: value for name, value in fields.items() if name != "hash"}
    return hashlib.sha256(DOMAIN + canonical_json(body)).hexdigest()


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`: `2025-01-31T09:30:00.000000Z`."""
    if moment.utcoffset() is None:
        raise UsageError("an audit time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append(
    previous: Record | None,
    *,
    time: datetime,
    event: Event,
    actor: str | None,
    subject: str | None,
    address: str | None,
    details: Mapping[str, Detail] | None = None,
) -> Record:
    """The record that follows `previous` (None: the log's first record)."""
    return following(
        0 if previous is None else previous.seq,
        GENESIS if previous is None else previous.hash,
        time=time,
        event=event,
        actor=actor,
        subject=subject,
        address=address,
        details=details,
    )


def following(
    seq: int,
    head: str,
    *,
    time: datetime,
    event: Event,
    actor: str | None,
    subject: str | None,
    address: str | None,
    details: Mapping[str, Detail] | None = None,
) -> Record:
    """The record that follows the one numbered `seq` whose hash is `head` (0 and GENESIS:
    the log is empty)."""
    event = Event(event)
    values = dict(details or {})
    for name, value in values.items():
        if not isinstance(name, str) or not isinstance(value, str | int | bool | type(None)):
            raise UsageError(f"audit detail {name!r} must be a string, integer, boolean or null")
    fields: dict[str, Any] = {
        "seq": seq + 1,
        "time": format_time(time),
        "event": str(event),
        "actor": actor,
        "subject": subject,
        "address": address,
        "details": values,
        "prev": head,
    }
    try:
        digest = record_hash(fields)
    except CryptoError as exc:
        raise UsageError(f"audit record cannot be encoded: {exc.message}") from exc
    return Record(
        seq=fields["seq"],
        time=fields["time"],
        event=event,
        actor=actor,
        subject=subject,
        address=address,
        details=values,
        prev=head,
        hash=digest,
    )


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    seq: int
    message: str


@dataclass(frozen=True)
class VerifyReport:
    """`count` and `head`: how many records verified, and the last one's hash (GENESIS for
    none); when a problem was found, those of the intact part before it."""

    ok: bool
    count: int
    head: str
    problem: Problem | None = field(default=None)


def _hash_of(record: Record) -> str | None:
    """The record's recomputed hash, or None if it cannot be hashed or is malformed."""
    well_formed = (
        isinstance(record.seq, int)
        and not isinstance(record.seq, bool)
        and isinstance(record.time, str)
        and _TIME.fullmatch(record.time) is not None
        and record.event in _EVENTS
        and isinstance(record.prev, str)
        and _HEX64.fullmatch(record.prev) is not None
        and isinstance(record.details, dict)
    )
    if not well_formed:
        return None
    try:
        return record_hash(record.to_dict())
    except CryptoError:
        return None


def _after_gap(
    rest: Iterator[Record], *, position: int, last_hash: str, offender: Record
) -> Problem:
    """Classify a gap at `position` (the record there claims a later seq) by reading the rest:
    reordered if the missing record turns up later and the one in its place chains onto a
    record that turns up too; inserted if the one in its place is a second claim to its seq or
    chains onto nothing in the log; deleted otherwise."""
    duplicate = found = anchored = False
    for record in rest:
        if record.seq == offender.seq and record.hash != offender.hash:
            duplicate = True
        if record.seq == position and record.prev == last_hash:
            found = True
        if record.seq == offender.seq - 1 and record.hash == offender.prev:
            anchored = True
    if duplicate or (found and not anchored):
        return Problem(
            "inserted",
            position,
            f"an extra record claiming seq {offender.seq} sits at position {position}: "
            "it was inserted; compare the log with a backup or an exported copy",
        )
    if found:
        return Problem(
            "reordered",
            position,
            f"record {offender.seq} sits where record {position} belongs, which comes later: "
            "the records were reordered; compare the log with a backup or an exported copy",
        )
    missing = (
        f"record {position} is missing"
        if offender.seq == position + 1
        else f"records {position} to {offender.seq - 1} are missing"
    )
    return Problem(
        "deleted",
        position,
        f"{missing}: they were deleted; restore them from a backup or an exported copy",
    )


def _claims_seq(rest: Iterator[Record], seq: int) -> bool:
    return any(record.seq == seq for record in rest)


def verify(records: Iterable[Record], checkpoints: Sequence[Checkpoint] = ()) -> VerifyReport:
    """Check the chain from record 1 on, and against checkpoints already verified as signed
    by the server's key (`Checkpoint.from_json`). Reads `records` once."""
    heads: dict[int, set[str]] = {}
    for checkpoint in checkpoints:
        heads.setdefault(checkpoint.length, set()).add(checkpoint.head)

    def report(count: int, head: str, problem: Problem | None) -> VerifyReport:
        return VerifyReport(ok=problem is None, count=count, head=head, problem=problem)

    if heads.get(0, {GENESIS}) != {GENESIS}:
        problem = Problem(
            "rewritten",
            0,
            "a signed checkpoint of the empty log names a head other than genesis: it is not "
            "a checkpoint of this log; compare it with the other copies and a backup",
        )
        return report(0, GENESIS, problem)

    count, head = 0, GENESIS
    stream = iter(records)
    for record in stream:
        position = count + 1
        if _hash_of(record) != record.hash:
            return report(
                count,
                head,
                Problem(
                    "modified",
                    position,
                    f"record {position} does not match its hash: it was modified; restore it "
                    "from a backup or an exported copy",
                ),
            )
        if record.seq == position and record.prev == head:
            count, head = position, record.hash
            if heads.get(position, {head}) != {head}:
                return report(
                    count,
                    head,
                    Problem(
                        "rewritten",
                        position,
                        f"the log up to record {position} differs from a signed checkpoint: "
                        "it was rewritten; restore it from a backup or an exported copy",
                    ),
                )
            continue
        if record.seq < position:
            where = record.seq if record.seq == count else position
            problem = Problem(
                "inserted",
                where,
                f"two records claim seq {record.seq}: one of them was inserted at position "
                f"{where}; compare the log with a backup or an exported copy",
            )
        elif record.seq == position:
            if _claims_seq(stream, position):
                problem = Problem(
                    "inserted",
                    position,
                    f"two records claim seq {position}: one of them was inserted; compare the "
                    "log with a backup or an exported copy",
                )
            else:
                problem = Problem(
                    "modified",
                    position,
                    f"record {position} does not chain onto record {count}: one of the two "
                    "was modified and re-hashed; restore them from a backup or an exported copy",
                )
        else:
            problem = _after_gap(stream, position=position, last_hash=head, offender=record)
        return report(count, head, problem)

    beyond = max(heads, default=0)
    if beyond > count:
        problem = Problem(
            "truncated",
            count + 1,
            f"a signed checkpoint covers {beyond} records but the log ends at record {count}: "
            f"records {count + 1} to {beyond} were removed; restore them from a backup",
        )
        return report(count, head, problem)
    return report(count, head, None)


__all__ = [
    "DOMAIN",
    "GENESIS",
    "Event",
    "Problem",
    "Record",
    "VerifyReport",
    "append",
    "following",
    "format_time",
    "record_hash",
    "verify",
]
