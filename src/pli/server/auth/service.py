"""Accounts and sessions: argon2id password hashes, random bearer tokens stored as hashes."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.errors import AuthError, ConflictError, NotFoundError, SessionEndedError, UsageError
from pli.server.auth.passwords import check_password
from pli.store import models
from pli.store.db import Database

# OWASP's password storage guidance for argon2id: 19 MiB, 2 iterations, 1 lane. Kept at
# that rather than RFC 9106's 64 MiB so a burst of logins cannot exhaust the server's memory.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
TOKEN_PREFIX = "plis_"  # noqa: S105  (a prefix for secret scanners, not a secret)
# A session's last use is written at most this often: not one database write per request.
_TOUCH_EVERY = timedelta(seconds=60)


def token_hash(token: str) -> str:
    """Bearer tokens carry 256 random bits: a plain SHA-256 is enough to make a stolen
    database useless for logging in, and lets sessions be looked up by an index."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so timing does not reveal accounts."""
    return _hasher.hash(secrets.token_hex(16))


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or not domain or len(email) > 254 or any(c.isspace() for c in email):
        raise UsageError(f"{email!r} is not an email address")
    if not email.isprintable():  # controls, NUL, invisible format characters, lone surrogates
        raise UsageError(f"{email!r} is not an email address")
    return email


def create_user(
    session: Session,
    email: str,
    password: str,
    *,
    is_admin: bool,
    now: datetime,
    actor: str | None = None,
) -> models.User:
    """A new account; `actor` (who created it) is recorded in the audit log when given."""
    email = normalize_email(email)
    check_password(password, email)
    user = models.User(
        email=email, password_hash=_hasher.hash(password), is_admin=is_admin, created_at=now
    )
    return _added(session, user, actor, {"action": "create-user", "admin": is_admin})


SERVICE_SCOPES = ("send", "receive")


def create_service(
    session: Session, email: str, scopes: list[str], *, now: datetime, actor: str
) -> models.User:
    """A service account: for an unattended job, used through API tokens limited to `scopes`
    (send, receive). Its password is random and never shown: no one logs in as it."""
    wanted = sorted(set(scopes))
    if not wanted or any(s not in SERVICE_SCOPES for s in wanted):
        raise UsageError(f"a service account's scopes are among: {', '.join(SERVICE_SCOPES)}")
    user = models.User(
        email=normalize_email(email),
        password_hash=_hasher.hash(secrets.token_urlsafe(32)),
        is_admin=False,
        created_at=now,
        service_scopes=" ".join(wanted),
    )
    return _added(session, user, actor, {"action": "create-service", "scopes": " ".join(wanted)})


def _added(
    session: Session, user: models.User, actor: str | None, details: dict[str, str | bool]
) -> models.User:
    """Store a new account, recorded as made by `actor` when given; ConflictError if its email
    is taken."""
    session.add(user)
    try:
        session.flush()
        if actor is not None:
            audit.record(
                session,
                Event.ADMIN_ACTION,
                now=user.created_at,
                actor=actor,
                subject=user.email,
                details=details,
            )
        session.commit()
    except DBIntegrityError as exc:
        session.rollback()
        raise ConflictError(f"an account for {user.email} already exists") from exc
    return user


def is_service(user: models.User) -> bool:
    return user.service_scopes is not None


def receives(user: models.User) -> bool:
    """Whether files may be sent to the account: every person; a service that receives."""
    return user.service_scopes is None or "receive" in user.service_scopes.split()


def find_user(session: Session, email: str) -> models.User:
    user = session.scalars(select(models.User).where(models.User.email == email.lower())).first()
    if user is None:
        raise NotFoundError(f"there is no account for {email}")
    return user


def authenticate(session: Session, email: str, password: str) -> models.User:
    user = session.scalars(select(models.User).where(models.User.email == email.lower())).first()
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError) as exc:
        raise AuthError("wrong email or password") from exc
    if user is None:
        raise AuthError("wrong email or password")
    if user.disabled_at is not None:
        # Only after the password checked out: a guesser learns nothing about the account.
        raise AuthError("this account is disabled: ask an administrator")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.commit()
    return user


def open_session(
    session: Session, user: models.User, *, now: datetime, ttl: timedelta
) -> tuple[str, datetime]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = now + ttl
    session.add(
        models.Session(
            user_id=user.id,
            token_hash=token_hash(token),
            created_at=now,
            expires_at=expires,
            last_seen_at=now,
        )
    )
    session.commit()
    return token, expires


def find_session(session: Session, token: str, *, now: datetime, idle: timedelta) -> models.Session:
    """The live session for `token`, touched; expired or idle ones are deleted on sight."""
    found = session.scalars(
        select(models.Session).where(models.Session.token_hash == token_hash(token))
    ).first()
    if found is None:
        raise SessionEndedError("your session has expired or is invalid: log in again")
    if found.expires_at <= now or found.last_seen_at + idle <= now:
        session.delete(found)
        session.commit()
        raise SessionEndedError("your session has expired: log in again")
    if now - found.last_seen_at > _TOUCH_EVERY:
        found.last_seen_at = now
        session.commit()
    return found


def close_session(session: Session, auth: models.Session) -> None:
    session.execute(delete(models.Session).where(models.Session.id == auth.id))
    session.commit()


def close_all_sessions(session: Session, user: models.User) -> int:
    result = session.execute(delete(models.Session).where(models.Session.user_id == user.id))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def change_password(
    session: Session,
    user: models.User,
    current: str,
    new: str,
    *,
    keep: models.Session | None,
    now: datetime,
) -> None:
    """Change the password; every other session of the account is closed."""
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError) as exc:
        raise AuthError("the current password is wrong") from exc
    check_password(new, user.email)
    if new == current:
        raise UsageError("the new password is the same as the current one")
    user.password_hash = _hasher.hash(new)
    stmt = delete(models.Session).where(models.Session.user_id == user.id)
    if keep is not None:
        stmt = stmt.where(models.Session.id != keep.id)
    session.execute(stmt)
    audit.record(session, Event.AUTH_PASSWORD_CHANGED, now=now, actor=user.email)
    session.commit()


def set_disabled(
    session: Session, email: str, *, disabled: bool, now: datetime, actor: str
) -> models.User:
    """Disable (closing every session) or re-enable an account."""
    user = find_user(session, email)
    user.disabled_at = now if disabled else None
    if disabled:
        session.execute(delete(models.Session).where(models.Session.user_id == user.id))
    action = "disable-user" if disabled else "enable-user"
    audit.record(
        session,
        Event.ADMIN_ACTION,
        now=now,
        actor=actor,
        subject=user.email,
        details={"action": action},
    )
    session.commit()
    return user


def login_failed(database: Database, email: str, reason: str, *, now: datetime) -> None:
    """Record a refused login. The account is named only when it exists: what someone typed
    into the email field (a password, by mistake) never reaches the log."""
    with database.session() as session:
        known = session.scalars(
            select(models.User.email).where(models.User.email == email.strip().lower())
        ).first()
        audit.record(
            session,
            Event.AUTH_LOGIN_FAILED,
            now=now,
            actor=known,
            details={"reason": reason, "account": "known" if known else "unknown"},
        )
        session.commit()
