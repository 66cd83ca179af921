"""Unusual access: thresholds over the last hour of an account's audit records.

After a download, a login or a failed decryption its client reports, the account's last hour
is counted from the audit log (by its actor, event and time index) against the policy's
thresholds. Crossing one raises an alert: an `alerts` row and an `alert.raised` record, once
per kind and account until it is cleared or an hour has passed. With `alert_action=suspend`
the account's downloads are suspended until an administrator (`pli admin alerts clear`) or
the account's own second factor (`pli alerts clear`) clears them. The default only alerts:
a stranger must not be able to lock a user out by tripping a threshold in their name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, BigInteger, ColumnElement, and_, cast, func, select
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event, format_time
from pli.crypto.signing import canonical_json
from pli.errors import ForbiddenError
from pli.server.policy import Policy
from pli.store import models

WINDOW = timedelta(hours=1)
SUSPENDED = (
    "downloads from this account are suspended after unusual activity: clear it with your "
    "second factor (`pli alerts clear`) or ask an administrator"
)


@dataclass(frozen=True)
class Rule:
    kind: str
    event: Event
    threshold: Callable[[Policy], int]
    measure: Callable[[Session, str, str], int]  # (session, email, since) -> amount
    # Whether `alert_action=suspend` applies. Not to failed decryptions: a sender can make
    # every download of theirs fail, and must not be able to suspend their recipient.
    suspends: bool = True


def _count(event: Event) -> Callable[[Session, str, str], int]:
    """The number of distinct subjects (transfers) of the account's `event`s: running the same
    failing download again counts once."""

    def measure(session: Session, email: str, since: str) -> int:
        stmt = select(func.count(func.distinct(models.AuditEntry.subject))).where(
            models.AuditEntry.actor == email,
            models.AuditEntry.event == str(event),
            models.AuditEntry.time >= since,
        )
        return int(session.scalar(stmt) or 0)

    return measure


def _downloads(email: str, since: str) -> ColumnElement[bool]:
    return and_(
        models.AuditEntry.actor == email,
        models.AuditEntry.event == str(Event.TRANSFER_DOWNLOADED),
        models.AuditEntry.time >= since,
    )


def _transfers(session: Session, email: str, since: str) -> int:
    distinct = func.count(func.distinct(models.AuditEntry.subject))
    return int(session.scalar(select(distinct).where(_downloads(email, since))) or 0)


def _bytes(session: Session, email: str, since: str) -> int:
    """The sum of the `bytes` detail of the account's downloads, added up by the database (one
    aggregate over the index, however many range requests the hour holds)."""
    details = models.AuditEntry.details
    if session.get_bind().dialect.name == "postgresql":
        sent: ColumnElement[Any] = cast(
            func.json_extract_path_text(cast(details, JSON), "bytes"), BigInteger
        )
    else:
        sent = func.json_extract(details, "$.bytes")
    total = select(func.coalesce(func.sum(sent), 0)).where(_downloads(email, since))
    return int(session.scalar(total) or 0)


def _addresses(session: Session, email: str, since: str) -> int:
    stmt = select(func.count(func.distinct(models.AuditEntry.address))).where(
        models.AuditEntry.actor == email,
        models.AuditEntry.event == str(Event.AUTH_LOGIN_SUCCEEDED),
        models.AuditEntry.time >= since,
    )
    return int(session.scalar(stmt) or 0)


RULES = (
    Rule("downloads", Event.TRANSFER_DOWNLOADED, lambda p: p.alert_downloads_per_hour, _transfers),
    Rule("bytes", Event.TRANSFER_DOWNLOADED, lambda p: p.alert_bytes_per_hour, _bytes),
    Rule(
        "login-addresses",
        Event.AUTH_LOGIN_SUCCEEDED,
        lambda p: p.alert_login_addresses_per_hour,
        _addresses,
    ),
    Rule(
        "failed-decryptions",
        Event.TRANSFER_DECRYPT_FAILED,
        lambda p: p.alert_failed_decryptions_per_hour,
        _count(Event.TRANSFER_DECRYPT_FAILED),
        suspends=False,
    ),
)


def check_downloads(user: models.User) -> None:
    if user.downloads_suspended_at is not None:
        raise ForbiddenError(SUSPENDED)


def after(
    session: Session, user: models.User, event: Event, rules: Policy, *, now: datetime
) -> None:
    """Count the account's last hour after an `event` of theirs was recorded in `session`,
    and raise an alert for each threshold it crossed (in the same transaction)."""
    since = format_time(now - WINDOW)
    for rule in RULES:
        if rule.event != event or _open(session, user, rule.kind, now=now):
            continue
        amount, limit = rule.measure(session, user.email, since), rule.threshold(rules)
        if amount > limit:
            _raise(session, user, rule, amount, limit, rules, now=now)


def _open(session: Session, user: models.User, kind: str, *, now: datetime) -> bool:
    stmt = select(models.Alert.id).where(
        models.Alert.user_id == user.id,
        models.Alert.kind == kind,
        models.Alert.cleared_at.is_(None),
        models.Alert.raised_at > now - WINDOW,
    )
    return session.scalars(stmt).first() is not None


def _raise(
    session: Session,
    user: models.User,
    rule: Rule,
    amount: int,
    limit: int,
    rules: Policy,
    *,
    now: datetime,
) -> None:
    kind = rule.kind
    suspend = rules.alert_action == "suspend" and rule.suspends
    details: dict[str, str | int | bool] = {
        "kind": kind,
        "amount": amount,
        "threshold": limit,
        "suspended": suspend,
    }
    session.add(
        models.Alert(
            user_id=user.id,
            kind=kind,
            details=canonical_json(details).decode("utf-8"),
            raised_at=now,
        )
    )
    if suspend and user.downloads_suspended_at is None:
        user.downloads_suspended_at = now
    audit.record(
        session,
        Event.ALERT_RAISED,
        now=now,
        actor=audit.SERVER,
        subject=user.email,
        details=details,
    )


def open_alerts(session: Session, user: models.User | None = None) -> list[models.Alert]:
    """Alerts not cleared, oldest first: of one account, or of all."""
    stmt = select(models.Alert).where(models.Alert.cleared_at.is_(None))
    if user is not None:
        stmt = stmt.where(models.Alert.user_id == user.id)
    return list(session.scalars(stmt.order_by(models.Alert.raised_at, models.Alert.id)))


def clear(session: Session, user: models.User, *, now: datetime, actor: str, how: str) -> int:
    """Clear the account's alerts and lift a suspension; recorded, committed. The number of
    alerts cleared."""
    found = open_alerts(session, user)
    for alert in found:
        alert.cleared_at = now
    lifted = user.downloads_suspended_at is not None
    user.downloads_suspended_at = None
    audit.record(
        session,
        Event.ALERT_CLEARED,
        now=now,
        actor=actor,
        subject=user.email,
        details={"alerts": len(found), "suspension_lifted": lifted, "by": how},
    )
    session.commit()
    return len(found)
