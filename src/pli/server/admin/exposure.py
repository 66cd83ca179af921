"""`pli admin exposure`: what a time window exposed, from the server's own records.

For an administrator facing a suspected breach (GDPR art. 33: the supervisory authority is to be
notified within 72 hours), `report` gathers from the audit log and the metadata tables:

- the transfers that existed in the window: created before its end and not purged before its
  start, with their routing metadata and whether their ciphertext was still stored at its end;
- the accesses in it: ciphertext downloads, receipts, share-link tickets taken, file requests
  read, grouped by event, actor, subject and client address;
- the logins in it: successful ones per account and address, refused ones per address (the
  account is null when the email typed is no account's), and the alerts raised;
- what a thief holding a full copy of the server would and would not have obtained, counted.

Windows are half-open, since <= time < until, like `pli admin audit export`. The tables say what
each row is now: a transfer's state, a device's escrow and an account's TOTP seed are counted
as they stand when the report runs, for the rows created before the window ended (those columns
have no history). What a copy holds is counted over everything created before the window ended,
not over the window alone: the metadata of a transfer outlives its files (docs/threat-model.md).

With an account, the report keeps that account's transfers (sent or received), the events it is
the actor or the subject of, and the accesses to its transfers and file requests; what a copy
holds is then that account's: its own password hash, escrowed keys and TOTP seed, the accounts
it exchanged with, its transfers' metadata and ciphertext.

`to_json` renders the facts as one object with stable keys; `to_markdown`, as a draft of the
notification, with placeholders for what only a person can say.
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, true
from sqlalchemy.orm import InstrumentedAttribute, Session

from pli.audit import log as audit
from pli.audit.chain import Detail, Event, Record, format_time
from pli.durations import parse_window
from pli.errors import UsageError
from pli.server.auth.service import find_user
from pli.server.transfers import service as transfers
from pli.store import models

FORMATS = ("markdown", "json")
ACCESSES = frozenset(
    {
        Event.TRANSFER_DOWNLOADED,
        Event.TRANSFER_RECEIVED,
        Event.LINK_ACCESSED,
        Event.REQUEST_ACCESSED,
    }
)
_BATCH = 500  # transfers per query: SQLite limits the parameters of one statement


# --- the facts ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferFact:
    id: str
    kind: str  # direct | link | answer
    sender: str  # an account, or "anonymous" for an answer to a file request
    recipients: tuple[str, ...]  # none for a share link
    created: str
    expires: str
    state: str  # as it is now
    purged_at: str | None
    files: int
    bytes: int  # ciphertext, as the file rows record it (they keep it after a purge)
    stored_at_end: bool  # its ciphertext was still stored when the window ended
    request: str | None  # the file request an answer came through


@dataclass(frozen=True)
class Access:
    event: str
    actor: str | None  # an account, or "anonymous"
    subject: str | None  # the transfer (the file request, for request.accessed)
    address: str | None
    requests: int
    bytes: int  # ciphertext bytes sent (transfer.downloaded only)
    first: str
    last: str


@dataclass(frozen=True)
class AddressCount:
    address: str | None
    count: int
    first: str
    last: str


@dataclass(frozen=True)
class Logins:
    account: str | None
    count: int
    addresses: tuple[AddressCount, ...]


@dataclass(frozen=True)
class FailedLogins:
    address: str | None
    account: str | None  # None: the email typed is no account's
    count: int
    first: str
    last: str


@dataclass(frozen=True)
class AlertRaised:
    time: str
    account: str | None
    kind: str | None
    details: dict[str, Detail]


@dataclass(frozen=True)
class WouldHave:
    """What a full copy of the server holds: counts."""

    accounts: int  # email addresses
    transfers: int  # who sent to whom, when, how many files of which sizes
    audit_records: int
    client_addresses: int  # distinct, in those records
    password_hashes: int  # argon2id: offline guessing
    escrowed_keys: int  # age, scrypt under the owner's passphrase: offline guessing
    totp_seeds: int  # sealed under the server key
    ciphertext_transfers: int  # transfers whose ciphertext was stored during the window
    ciphertext_bytes: int
    still_stored_transfers: int  # ... and still stored at its end
    still_stored_bytes: int


@dataclass(frozen=True)
class WouldNotHave:
    """What it does not hold, and how many of each there are."""

    devices: int  # whose private keys never leave them
    links: int  # whose keys live only in their URL's fragment
    file_requests: int  # whose secrets live only in their URL's fragment


@dataclass(frozen=True)
class ServerCopy:
    would_have: WouldHave
    would_not_have: WouldNotHave


@dataclass(frozen=True)
class Exposure:
    since: str
    until: str
    account: str | None
    transfers: tuple[TransferFact, ...]
    accesses: tuple[Access, ...]
    logins: tuple[Logins, ...]
    failed_logins: tuple[FailedLogins, ...]
    alerts: tuple[AlertRaised, ...]
    server_copy: ServerCopy


# --- the window -----------------------------------------------------------------------------


def check_window(since: datetime, until: datetime) -> None:
    if since >= until:
        raise UsageError("--since must be before --until")


# --- the report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """Everything, or one account's share of it, up to the end of the window."""

    user: models.User | None
    until: datetime

    def transfers(self) -> Select[models.Transfer]:
        stmt = select(models.Transfer) if self.user is None else transfers.visible_to(self.user)
        return stmt.where(models.Transfer.created_at < self.until)

    def transfer_ids(self) -> Select[str]:
        return self.transfers().with_only_columns(models.Transfer.id)

    def owned(self, column: InstrumentedAttribute[int]) -> ColumnElement[bool]:
        return true() if self.user is None else column == self.user.id

    def request_ids(self) -> Select[str]:
        return select(models.FileRequest.id).where(self.owned(models.FileRequest.owner_id))

    def audited(self) -> ColumnElement[bool]:
        """The audit records about this scope."""
        if self.user is None:
            return true()
        entry = models.AuditEntry
        return or_(
            entry.actor == self.user.email,
            entry.subject == self.user.email,
            entry.subject.in_(self.transfer_ids()),
            entry.subject.in_(self.request_ids()),
        )


def report(
    session: Session, since: datetime, until: datetime, account: str | None = None
) -> Exposure:
    """The facts of the window [since, until), for every account or for `account` only."""
    check_window(since, until)
    scope = _Scope(None if account is None else find_user(session, account.strip()), until)
    facts = _transfer_facts(session, scope, since)
    # What is accessed in the window existed in it: the window's transfers are all the
    # subjects an account's accesses can have, with its file requests.
    subjects = {fact.id for fact in facts} | set(session.scalars(scope.request_ids()))
    tally = _Tally()
    for record in audit.records(session, since=since, until=until):
        if _concerns(record, scope, subjects):
            tally.add(record)
    return Exposure(
        since=format_time(since),
        until=format_time(until),
        account=None if scope.user is None else scope.user.email,
        transfers=tuple(facts),
        accesses=tally.accesses(),
        logins=tally.logins(),
        failed_logins=tally.failed_logins(),
        alerts=tuple(tally.alerts),
        server_copy=_server_copy(session, scope, facts),
    )


def _concerns(record: Record, scope: _Scope, subjects: set[str]) -> bool:
    if scope.user is None:
        return True
    email = scope.user.email
    return email in (record.actor, record.subject) or record.subject in subjects


def _transfer_facts(session: Session, scope: _Scope, since: datetime) -> list[TransferFact]:
    """The transfers that existed in the window, oldest first."""
    stmt = scope.transfers().where(
        or_(models.Transfer.purged_at.is_(None), models.Transfer.purged_at >= since)
    )
    found = list(session.scalars(stmt.order_by(models.Transfer.created_at, models.Transfer.id)))
    facts: list[TransferFact] = []
    for start in range(0, len(found), _BATCH):
        views = transfers.views_of(session, found[start : start + _BATCH])
        facts.extend(_fact(view, scope.until) for view in views)
    return facts


def _fact(view: transfers.TransferView, until: datetime) -> TransferFact:
    transfer = view.transfer
    size = sum(row.size or 0 for row in view.files)
    if transfer.purged_at is None:
        stored = any(row.blob_key is not None for row in view.files)
    else:
        stored = transfer.purged_at >= until and size > 0
    return TransferFact(
        id=transfer.id,
        kind=transfer.kind,
        sender=view.sender or audit.ANONYMOUS,
        recipients=tuple(view.recipients),
        created=format_time(transfer.created_at),
        expires=format_time(transfer.expires_at),
        state=transfer.state,
        purged_at=None if transfer.purged_at is None else format_time(transfer.purged_at),
        files=len(view.files),
        bytes=size,
        stored_at_end=stored,
        request=view.request,
    )


@dataclass
class _Count:
    first: str
    last: str = ""
    count: int = 0
    bytes: int = 0

    def add(self, time: str, amount: int = 0) -> None:
        self.count, self.bytes, self.last = self.count + 1, self.bytes + amount, time


_AccessKey = tuple[str, str | None, str | None, str | None]
_Pair = tuple[str | None, str | None]


class _Tally:
    """The audit records of the window, counted as they stream past (in seq order)."""

    def __init__(self) -> None:
        self._accesses: dict[_AccessKey, _Count] = {}
        self._logins: dict[_Pair, _Count] = {}  # (account, address)
        self._failed: dict[_Pair, _Count] = {}  # (address, account)
        self.alerts: list[AlertRaised] = []

    def add(self, record: Record) -> None:
        if record.event in ACCESSES:
            key = (str(record.event), record.actor, record.subject, record.address)
            _counter(self._accesses, key, record.time).add(record.time, _sent(record))
        elif record.event == Event.AUTH_LOGIN_SUCCEEDED:
            _counter(self._logins, (record.actor, record.address), record.time).add(record.time)
        elif record.event == Event.AUTH_LOGIN_FAILED:
            _counter(self._failed, (record.address, record.actor), record.time).add(record.time)
        elif record.event == Event.ALERT_RAISED:
            kind = record.details.get("kind")
            self.alerts.append(
                AlertRaised(
                    time=record.time,
                    account=record.subject,
                    kind=kind if isinstance(kind, str) else None,
                    details=dict(record.details),
                )
            )

    def accesses(self) -> tuple[Access, ...]:
        return tuple(
            Access(event, actor, subject, address, c.count, c.bytes, c.first, c.last)
            for (event, actor, subject, address), c in sorted(
                self._accesses.items(), key=lambda item: (item[1].first, *map(_text, item[0]))
            )
        )

    def logins(self) -> tuple[Logins, ...]:
        accounts: dict[str | None, list[AddressCount]] = {}
        for (account, address), c in sorted(self._logins.items(), key=_by_pair):
            accounts.setdefault(account, []).append(AddressCount(address, c.count, c.first, c.last))
        return tuple(
            Logins(account, sum(a.count for a in found), tuple(found))
            for account, found in accounts.items()
        )

    def failed_logins(self) -> tuple[FailedLogins, ...]:
        return tuple(
            FailedLogins(address, account, c.count, c.first, c.last)
            for (address, account), c in sorted(self._failed.items(), key=_by_pair)
        )


def _counter(counts: dict[Any, _Count], key: Any, time: str) -> _Count:
    return counts.setdefault(key, _Count(first=time))


def _sent(record: Record) -> int:
    sent = record.details.get("bytes") if record.event == Event.TRANSFER_DOWNLOADED else 0
    return sent if isinstance(sent, int) and not isinstance(sent, bool) else 0


def _text(value: str | None) -> str:
    return "" if value is None else value


def _by_pair(item: tuple[_Pair, _Count]) -> tuple[str, str]:
    return _text(item[0][0]), _text(item[0][1])


# --- what a copy of the server holds --------------------------------------------------------


def _count(session: Session, stmt: Select[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(stmt.subquery())) or 0)


def _server_copy(session: Session, scope: _Scope, facts: Sequence[TransferFact]) -> ServerCopy:
    users = select(models.User.id).where(models.User.created_at < scope.until)
    devices = select(models.Device.id).where(
        models.Device.created_at < scope.until, scope.owned(models.Device.user_id)
    )
    held = [f for f in facts if f.bytes > 0 and (f.stored_at_end or f.purged_at is not None)]
    stored = [f for f in facts if f.stored_at_end]
    have = WouldHave(
        accounts=_count(session, _accounts(scope)),
        transfers=_count(session, scope.transfer_ids()),
        audit_records=_count(session, _audit(scope).with_only_columns(models.AuditEntry.seq)),
        client_addresses=_count(session, _addresses(scope)),
        password_hashes=_count(session, users.where(scope.owned(models.User.id))),
        escrowed_keys=_count(session, devices.where(models.Device.escrow.is_not(None))),
        totp_seeds=_count(
            session,
            users.where(scope.owned(models.User.id), models.User.totp_secret.is_not(None)),
        ),
        ciphertext_transfers=len(held),
        ciphertext_bytes=sum(f.bytes for f in held),
        still_stored_transfers=len(stored),
        still_stored_bytes=sum(f.bytes for f in stored),
    )
    return ServerCopy(have, _would_not_have(session, scope, devices))


def _would_not_have(session: Session, scope: _Scope, devices: Select[Any]) -> WouldNotHave:
    links = (
        scope.transfers()
        .where(models.Transfer.kind == "link")
        .with_only_columns(models.Transfer.id)
    )
    requests = scope.request_ids().where(models.FileRequest.created_at < scope.until)
    return WouldNotHave(
        devices=_count(session, devices),
        links=_count(session, links),
        file_requests=_count(session, requests),
    )


def _accounts(scope: _Scope) -> Select[int]:
    """The accounts a copy names: all, or one and those it exchanged with."""
    users = select(models.User.id).where(models.User.created_at < scope.until)
    if scope.user is None:
        return users
    ids = scope.transfer_ids()
    recipients = select(models.TransferRecipient.user_id).where(
        models.TransferRecipient.transfer_id.in_(ids)
    )
    senders = select(models.Transfer.sender_id).where(models.Transfer.id.in_(ids))
    return users.where(
        or_(
            models.User.id == scope.user.id,
            models.User.id.in_(recipients),
            models.User.id.in_(senders),
        )
    )


def _audit(scope: _Scope) -> Select[models.AuditEntry]:
    return select(models.AuditEntry).where(
        models.AuditEntry.time < format_time(scope.until), scope.audited()
    )


def _addresses(scope: _Scope) -> Select[str | None]:
    return (
        _audit(scope)
        .with_only_columns(models.AuditEntry.address)
        .where(models.AuditEntry.address.is_not(None))
        .distinct()
    )


# --- JSON -----------------------------------------------------------------------------------


def to_dict(found: Exposure) -> dict[str, Any]:
    return dataclasses.asdict(found)


def to_json(found: Exposure) -> str:
    """One JSON object, keys in a fixed order, ending with a newline."""
    return json.dumps(to_dict(found), indent=2, ensure_ascii=False) + "\n"


# --- the notification draft -----------------------------------------------------------------

_TODO = "_To be completed by the administrator"


def to_markdown(found: Exposure) -> str:
    """A draft of the notification to the supervisory authority, facts in tables."""
    sections = [
        _title(found),
        _nature(),
        _contact(),
        _categories(found),
        _consequences(found),
        _measures(found),
        _tables(found),
    ]
    return "\n\n".join(sections) + "\n"


def _title(found: Exposure) -> str:
    scope = (
        "every account"
        if found.account is None
        else f"the account {_cell(found.account)}: its transfers and the events about it"
    )
    return "\n".join(
        [
            "# Personal data breach: draft notification to the supervisory authority",
            "",
            "GDPR article 33: to be notified within 72 hours of becoming aware of the breach. "
            "Figures come from the server's audit log and metadata tables "
            "(`pli admin exposure`); text in italics is for the administrator to complete.",
            "",
            f"- Window examined: from {found.since} to {found.until} (end excluded), in UTC.",
            f"- Scope: {scope}.",
        ]
    )


def _nature() -> str:
    return (
        "## 1. Nature of the breach\n\n"
        f"{_TODO}: what happened, how and when it was discovered, whether it is contained, "
        "and what was reached (database, blob store, backups, logs, the host, the server key)._"
    )


def _contact() -> str:
    return (
        "## 2. Contact point\n\n"
        f"{_TODO}: name and contact details of the data protection officer or other contact "
        "point._"
    )


def _categories(found: Exposure) -> str:
    have = found.server_copy.would_have
    answers = sum(1 for t in found.transfers if t.kind == "answer")
    links = sum(1 for t in found.transfers if t.kind == "link")
    return "\n".join(
        [
            "## 3. Categories and approximate number of data subjects and records concerned",
            "",
            f"- Account holders: {_n(have.accounts, 'account')}, named by email address.",
            f"- People without an account: the senders of {_n(answers, 'answer')} to file "
            f"requests and the holders of {_n(links, 'share link')} in the window; the server "
            "knows them only by client address.",
            f"- Records: the metadata of {_n(have.transfers, 'transfer')} (sender, recipients, "
            f"times, number and sizes of files), {len(found.transfers)} of them in the window; "
            f"{_n(have.audit_records, 'audit record')} holding "
            f"{_n(have.client_addresses, 'distinct client address', 'distinct client addresses')}.",
            f"- People whose data the files hold (patients, staff): {_TODO}: the server never "
            "holds a file's content or name, so it cannot tell whose data the files hold nor "
            "how many people they concern; their senders can._",
        ]
    )


def _consequences(found: Exposure) -> str:
    have, lacks = found.server_copy.would_have, found.server_copy.would_not_have
    return "\n".join(
        [
            "## 4. Likely consequences",
            "",
            "A person holding a full copy of the server (database, blob store, backups) taken "
            "in the window would have obtained:",
            "",
            f"- the email addresses of {_n(have.accounts, 'account')};",
            f"- who exchanged with whom and when: the metadata of "
            f"{_n(have.transfers, 'transfer')}, kept after their files are deleted;",
            "- the size of every file's ciphertext, from which its plaintext size follows;",
            f"- the client addresses in the audit log: {have.client_addresses} distinct, in "
            f"{_n(have.audit_records, 'record')};",
            f"- the argon2id password hashes of {_n(have.password_hashes, 'account')}: weak "
            "passwords can be guessed offline;",
            f"- {_n(have.escrowed_keys, 'escrowed private key')} (age, scrypt-wrapped under "
            "each owner's passphrase): passphrases can be guessed offline, one scrypt "
            "derivation per guess;",
            f"- the TOTP seeds of {_n(have.totp_seeds, 'account')}, sealed under the server "
            "key: readable if the copy includes the key file (`token-hmac.key` in the data "
            "directory) or `PLI_TOKEN_KEY`;",
            f"- the ciphertext of {_n(have.ciphertext_transfers, 'transfer')} stored during the "
            f"window ({have.ciphertext_bytes} bytes), {have.still_stored_transfers} of them "
            f"({have.still_stored_bytes} bytes) still stored at its end: encrypted files and "
            "manifests, not their content.",
            "",
            "It would not have obtained:",
            "",
            "- any file content, file name or message: they are encrypted on the sender's "
            "device to the recipients' keys, and the server never holds a private key (the "
            f"private keys of {_n(lacks.devices, 'device')} stay on those devices);",
            f"- the keys of {_n(lacks.links, 'share link')}: they live only in the links' URL "
            "fragments, which are never sent to the server;",
            f"- the secrets of {_n(lacks.file_requests, 'file request')}: likewise in their "
            "URLs only;",
            "- a usable session or API token: the server keeps only their SHA-256 hashes or HMACs.",
            "",
            f"{_TODO}: the likely consequences for the people concerned._",
        ]
    )


def _measures(found: Exposure) -> str:
    have = found.server_copy.would_have
    return (
        "## 5. Measures taken or proposed\n\n"
        f"{_TODO}: what was done to end the breach and limit its effects, and whether the "
        "people concerned are told (article 34). To consider, from the figures above: new "
        f"passwords for the {_n(have.password_hashes, 'account')} whose hashes were held; new "
        f"passphrases for the {_n(have.escrowed_keys, 'escrowed key')}; new second factors "
        f"for the {_n(have.totp_seeds, 'account')} with a TOTP seed if the server key was "
        f"copied; revoking the {_n(have.still_stored_transfers, 'transfer')} still stored._"
    )


def _tables(found: Exposure) -> str:
    return "\n\n".join(
        [
            "## 6. Facts from the server's records",
            "### Transfers that existed in the window\n\n" + _transfer_table(found.transfers),
            "### Accesses in the window\n\n" + _access_table(found.accesses),
            "### Successful logins\n\n" + _login_table(found.logins),
            "### Failed logins\n\n" + _failed_table(found.failed_logins),
            "### Alerts raised\n\n" + _alert_table(found.alerts),
        ]
    )


def _transfer_table(facts: Sequence[TransferFact]) -> str:
    header = (
        "id",
        "kind",
        "sender",
        "recipients",
        "created",
        "expires",
        "state",
        "purged",
        "files",
        "bytes",
        "stored at end",
    )
    rows = (
        (
            f.id,
            f.kind,
            f.sender,
            ", ".join(f.recipients) or None,
            f.created,
            f.expires,
            f.state,
            f.purged_at,
            f.files,
            f.bytes,
            "yes" if f.stored_at_end else "no",
        )
        for f in facts
    )
    return _table(header, rows)


def _access_table(accesses: Sequence[Access]) -> str:
    header = (
        "event",
        "who",
        "transfer or request",
        "address",
        "requests",
        "bytes",
        "first",
        "last",
    )
    rows = (
        (a.event, a.actor, a.subject, a.address, a.requests, a.bytes, a.first, a.last)
        for a in accesses
    )
    return _table(header, rows)


def _login_table(logins: Sequence[Logins]) -> str:
    header = ("account", "address", "logins", "first", "last")
    rows = (
        (entry.account, a.address, a.count, a.first, a.last)
        for entry in logins
        for a in entry.addresses
    )
    return _table(header, rows)


def _failed_table(failed: Sequence[FailedLogins]) -> str:
    header = ("address", "account", "failures", "first", "last")
    rows = ((f.address, f.account or "(no such account)", f.count, f.first, f.last) for f in failed)
    return _table(header, rows)


def _alert_table(alerts: Sequence[AlertRaised]) -> str:
    header = ("time", "account", "alert", "details")
    rows = (
        (
            a.time,
            a.account,
            a.kind,
            ", ".join(f"{k}={v}" for k, v in sorted(a.details.items()) if k != "kind"),
        )
        for a in alerts
    )
    return _table(header, rows)


def _table(header: Sequence[str], rows: Iterable[Sequence[str | int | None]]) -> str:
    lines = [_row(header), _row(["---"] * len(header))]
    lines.extend(_row([_cell(value) for value in row]) for row in rows)
    return "_None._" if len(lines) == 2 else "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _cell(value: str | int | None) -> str:
    """A value as inert table text: the log holds what clients sent (addresses, emails), so
    control characters cannot break a line and a `|` cannot open a column."""
    if value is None:
        return "-"
    text = "".join("?" if unicodedata.category(c)[0] == "C" else c for c in str(value))
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _n(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


__all__ = [
    "FORMATS",
    "Access",
    "AlertRaised",
    "Exposure",
    "FailedLogins",
    "Logins",
    "ServerCopy",
    "TransferFact",
    "check_window",
    "parse_window",
    "report",
    "to_dict",
    "to_json",
    "to_markdown",
]
