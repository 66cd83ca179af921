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

from pli.errors import AuthError, ConflictError, UsageError
from pli.store import models

# OWASP's password storage guidance for argon2id: 19 MiB, 2 iterations, 1 lane. Kept at
# that rather than RFC 9106's 64 MiB so a burst of logins cannot exhaust the server's memory.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
TOKEN_PREFIX = "plis_"  # noqa: S105  (a prefix for secret scanners, not a secret)


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
    return email


def create_user(
    session: Session, email: str, password: str, *, is_admin: bool, now: datetime
) -> models.User:
    if len(password) < 12:
        raise UsageError("the password must have at least 12 characters")
    user = models.User(
        email=normalize_email(email),
        password_hash=_hasher.hash(password),
        is_admin=is_admin,
        created_at=now,
    )
    session.add(user)
    try:
        session.commit()
    except DBIntegrityError as exc:
        session.rollback()
        raise ConflictError(f"an account for {user.email} already exists") from exc
    return user


def authenticate(session: Session, email: str, password: str) -> models.User:
    user = session.scalars(select(models.User).where(models.User.email == email.lower())).first()
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password)
    except (VerificationError, InvalidHashError) as exc:
        raise AuthError("wrong email or password") from exc
    if user is None:
        raise AuthError("wrong email or password")
    return user


def open_session(
    session: Session, user: models.User, *, now: datetime, ttl: timedelta
) -> tuple[str, datetime]:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    expires = now + ttl
    session.add(
        models.Session(
            user_id=user.id, token_hash=token_hash(token), created_at=now, expires_at=expires
        )
    )
    session.commit()
    return token, expires


def close_session(session: Session, auth: models.Session) -> None:
    session.execute(delete(models.Session).where(models.Session.id == auth.id))
    session.commit()
