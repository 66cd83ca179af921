"""`pli admin audit verify` and `pli admin audit export`, run on the server host against the
server's own database (SQLite in DATA, or PLI_DATABASE_URL).

verify checks, in this order, and reports the first problem found:

1. every line of the checkpoint file is a checkpoint signed by the audit key (the one the
   auditor pins with --key, else the server's own): a line that is not was forged or altered;
2. the hash chain, record by record, against those checkpoints (`pli.audit.chain.verify`):
   it catches modified, deleted, inserted and reordered records, and a tail rewritten or cut
   off after a checkpoint covered it. In the database the seq is the row's key, so an inserted,
   moved or renumbered row first shows as a record that no longer matches its hash; when it
   matches under another seq, the kind is named from where it belongs (`_renumbered`);
3. the chain against the audit_head row, which every append updates: records cut off the end,
   or a tail rewritten without the head row, show there even without a checkpoint.

An attacker who rewrites the tail and the head row consistently is caught by step 2 only:
that is what checkpoints kept outside the database are for.

Both verbs read the log in seq order in batches, in constant memory however long it is.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import select
from sqlalchemy.orm import Session

from pli.audit import checkpointer, log
from pli.audit.chain import GENESIS, Event, Record, format_time, record_hash, verify
from pli.crypto.checkpoints import Checkpoint
from pli.crypto.signing import canonical_json, public_key
from pli.durations import parse_window
from pli.errors import (
    ConfigError,
    ConflictError,
    CryptoError,
    SignatureError,
    TamperingError,
    UsageError,
)
from pli.server.config import Settings
from pli.server.main import operator, server_database
from pli.store import models

FORMATS = ("jsonl", "csv")
CSV_COLUMNS = ("seq", "time", "event", "actor", "subject", "address", "details", "prev", "hash")
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP: CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_SEARCH = 1000  # how far from its place a renumbered record is looked for (a hash each)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class Finding:
    """What verify found wrong. `kind`: a chain problem kind (pli.audit.chain), or `forged`
    for a checkpoint line that does not verify; `seq` or `line` says where."""

    kind: str
    message: str
    seq: int | None = None
    line: int | None = None

    def describe(self) -> str:
        where = f"seq {self.seq}" if self.line is None else f"checkpoint line {self.line}"
        return f"tampering at {where} ({self.kind}): {self.message}"


@dataclass(frozen=True)
class Verification:
    """`records` and `head`: how many records verified and the last one's hash (on a problem,
    those of the intact part before it); `checkpoints`: the checkpoint lines that verified."""

    records: int
    head: str
    checkpoints: int
    problem: Finding | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def summary(self) -> str:
        return (
            f"audit log intact: {self.records} records, head {self.head} "
            f"({self.checkpoints} checkpoints checked)"
        )

    def to_dict(self) -> dict[str, Any]:
        problem = None
        if self.problem is not None:
            problem = {
                "kind": self.problem.kind,
                "seq": self.problem.seq,
                "line": self.problem.line,
                "message": self.problem.message,
            }
        return {
            "ok": self.ok,
            "records": self.records,
            "head": self.head,
            "checkpoints": self.checkpoints,
            "problem": problem,
        }

    def raise_for_problem(self) -> None:
        if self.problem is not None:
            raise TamperingError(self.problem.describe())


# --- verify ---------------------------------------------------------------------------------


def verify_log(
    data: Path, *, checkpoints: Path | None = None, key: str | None = None
) -> Verification:
    """Verify the server's log, against the checkpoints in `checkpoints` if given, signed by
    `key` (a public key in base64) or else by the server's own audit key."""
    with server_database(data, existing=True) as (session, settings):
        found: list[Checkpoint] = []
        if checkpoints is not None:
            trusted = _trusted_key(settings, key)
            read = read_checkpoints(checkpoints, trusted)
            if isinstance(read, Finding):
                return Verification(0, GENESIS, 0, read)
            found = read
        return verify_session(session, found)


def read_checkpoints(path: Path, key: str) -> list[Checkpoint] | Finding:
    """Every checkpoint in the file, or the first line that is not one signed by `key`."""
    found: list[Checkpoint] = []
    try:
        with path.open(encoding="utf-8", errors="replace") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    found.append(Checkpoint.from_json(line, key))
                except SignatureError:
                    return _forged(path, number, key)
    except OSError as exc:
        raise ConfigError(f"cannot read the checkpoint file {path}: {exc.strerror}") from exc
    return found


def _forged(path: Path, number: int, key: str) -> Finding:
    message = (
        f"line {number} of {path} is not a checkpoint signed by the audit key {key}: it was "
        "forged or altered, or comes from another server; compare the file with the syslog "
        "copy of the checkpoints"
    )
    return Finding("forged", message, line=number)


def verify_session(session: Session, checkpoints: Sequence[Checkpoint] = ()) -> Verification:
    """Verify the log in `session`'s database against checkpoints already verified."""
    length, head_hash = log.head(session)  # read first: the log may grow while it is checked
    watch = _Watch(log.records(session), length)
    report = verify(watch, _distinct(checkpoints))
    problem: Finding | None = None
    if report.problem is not None:
        found = Finding(report.problem.kind, report.problem.message, seq=report.problem.seq)
        problem = _renumbered(session, found, report.head)
    elif report.count < length:
        problem = Finding(
            "truncated",
            f"the audit_head row counts {length} records but the log ends at record "
            f"{report.count}: records {report.count + 1} to {length} were removed; restore "
            "them from a backup",
            seq=report.count + 1,
        )
    elif watch.hash != head_hash:
        problem = Finding(
            "rewritten",
            f"record {length} does not have the hash the audit_head row names: the log was "
            "rewritten; restore it from a backup or an exported copy",
            seq=length,
        )
    return Verification(report.count, report.head, len(checkpoints), problem)


class _Watch:
    """The records, passed through, noting the hash of the one numbered `seq`."""

    def __init__(self, records: Iterable[Record], seq: int) -> None:
        self._records, self._seq = records, seq
        self.hash: str | None = GENESIS if seq == 0 else None

    def __iter__(self) -> Iterator[Record]:
        for record in self._records:
            if record.seq == self._seq and self.hash is None:
                self.hash = record.hash
            yield record


def _renumbered(session: Session, finding: Finding, head: str) -> Finding:
    """In the database a record's seq is its row's key, so rows inserted, moved or deleted
    with the others renumbered to close the gap show in the chain only as a record that no
    longer matches its hash. When that record matches it under another seq, it is a genuine
    record out of place, and the kind of tampering can be named. `head`: the hash of the
    last intact record, the one before `finding.seq`."""
    row = session.get(models.AuditEntry, finding.seq) if finding.kind == "modified" else None
    if row is None or finding.seq is None:
        return finding
    position, genuine = finding.seq, _genuine_seq(log.to_record(row))
    if genuine is None:
        return finding
    advice = "compare the log with a backup or an exported copy"
    if genuine < position:
        return Finding(
            "inserted",
            f"record {position} is the genuine record {genuine} renumbered: "
            f"{position - genuine} record(s) were inserted before it, from seq {genuine}; {advice}",
            seq=genuine,
        )
    # The genuine record for this position, if it is still in the log, chains onto `head`.
    later = select(models.AuditEntry.seq).where(
        models.AuditEntry.prev == head, models.AuditEntry.seq > position
    )
    moved = session.scalars(later.limit(1)).first()
    if moved is not None:
        return Finding(
            "reordered",
            f"record {genuine} sits at seq {position} and record {position} at seq {moved}: "
            f"the records were reordered; {advice}",
            seq=position,
        )
    return Finding(
        "deleted",
        f"record {position} is the genuine record {genuine} renumbered: records {position} to "
        f"{genuine - 1} were deleted and the rest renumbered; restore them from a backup",
        seq=position,
    )


def _genuine_seq(record: Record) -> int | None:
    """The seq near its own under which `record` matches its hash, other than its own."""
    fields = record.to_dict()
    for seq in range(max(1, record.seq - _SEARCH), record.seq + _SEARCH + 1):
        try:
            if seq != record.seq and record_hash({**fields, "seq": seq}) == record.hash:
                return seq
        except CryptoError:  # content no hash can be computed over: modified, nothing more
            return None
    return None


def _distinct(checkpoints: Sequence[Checkpoint]) -> list[Checkpoint]:
    """One checkpoint per (length, head): a server writes the same one again at each start."""
    return list({(c.length, c.head): c for c in checkpoints}.values())


def _trusted_key(settings: Settings, key: str | None) -> str:
    if key is not None:
        try:
            public_key(key.strip())
        except SignatureError as exc:
            raise UsageError(
                "--key must be the audit public key that pli serve printed (base64)"
            ) from exc
        return key.strip()
    own = checkpointer.public_key(settings)
    if own is None:
        raise ConfigError(
            f"no audit key in {settings.data_dir} and PLI_AUDIT_KEY is not set: pass --key with "
            "the public key pli serve printed"
        )
    return own


# --- export ---------------------------------------------------------------------------------


def export_log(
    data: Path, *, since: str, until: str, fmt: str, output: Path | None, stdout: TextIO
) -> int:
    """Write every record with since <= time < until to `output` (a new file, 0600) or to
    `stdout`, as JSON lines or CSV; return how many."""
    start, end = parse_window(since, until)
    if fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}")
    with server_database(data, existing=True) as (session, settings):
        selected = log.records(session, since=start, until=end)
        if output is None:
            count = write_records(selected, fmt, stdout)
        else:
            with _new_file(output) as handle:
                count = write_records(selected, fmt, handle)
        log.record(
            session,
            Event.ADMIN_ACTION,
            now=settings.clock(),
            actor=operator(),
            details={
                "action": "audit-export",
                "since": format_time(start),
                "until": format_time(end),
                "records": count,
            },
        )
        session.commit()
        return count


def write_records(records: Iterable[Record], fmt: str, out: TextIO) -> int:
    """Write `records` as JSON lines (canonical JSON) or CSV; return how many."""
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        if writer is not None:
            writer.writerow(csv_row(record))
        else:
            out.write(_json(record.to_dict()) + "\n")
        count += 1
    return count


def csv_row(record: Record) -> list[str | int]:
    fields = record.to_dict()
    fields["details"] = _json(fields["details"])
    return [
        neutralise(value) if isinstance(value, str) else "" if value is None else value
        for value in (fields[name] for name in CSV_COLUMNS)
    ]


def neutralise(cell: str) -> str:
    """The cell, made inert for spreadsheets: one that would run as a formula gets a `'`."""
    return f"'{cell}" if cell.startswith(_FORMULA_STARTS) else cell


def _json(value: Any) -> str:
    """Canonical JSON; a row tampered with into something canonical JSON refuses (a float)
    is still exported, as plain sorted JSON, for the auditor to see."""
    try:
        return canonical_json(value).decode("utf-8")
    except CryptoError:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


@contextlib.contextmanager
def _new_file(path: Path) -> Iterator[TextIO]:
    """A new file, 0600, never one that exists; removed again if the export fails."""
    try:
        fd = os.open(path, _NEW_FILE, 0o600)
    except FileExistsError as exc:
        raise ConflictError(f"{path} already exists: choose another file name") from exc
    except OSError as exc:
        raise ConfigError(f"cannot create {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            yield handle
    except BaseException:
        path.unlink(missing_ok=True)
        raise


# --- the database ---------------------------------------------------------------------------
