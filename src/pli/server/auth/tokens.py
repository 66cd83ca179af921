"""API tokens for automation: scoped, expiring, shown once, stored only as HMACs.

A token is `plit_` + 256 random bits, so secret scanners recognise a leaked one. The server
keeps HMAC-SHA256(server key, token): a copy of the database alone cannot be used to log in,
nor to test guesses without the key (which lives outside the database).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.errors import AuthError, ConfigError, ForbiddenError, NotFoundError, UsageError
from pli.store import models

API_TOKEN_PREFIX = "plit_"  # noqa: S105  (a prefix for secret scanners, not a secret)
SCOPES = ("send", "receive", "admin")
MAX_TOKEN_TTL = timedelta(days=366)
_TOUCH_EVERY = timedelta(seconds=60)
KEY_FILE = "token-hmac.key"


def load_key(data_dir: Path, env_value: str | None) -> bytes:
    """`PLI_TOKEN_KEY` (hex, shared by every instance on one database), else a key file made
    once in the data directory with mode 0600."""
    if env_value:
        try:
            key = bytes.fromhex(env_value)
        except ValueError as exc:
            raise ConfigError("PLI_TOKEN_KEY must be hex") from exc
        if len(key) < 32:
            raise ConfigError("PLI_TOKEN_KEY must hold at least 32 bytes (64 hex digits)")
        return key
    path = data_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def token_hmac(key: bytes, token: str) -> str:
    return hmac.new(key, token.encode("utf-8"), hashlib.sha256).hexdigest()


def create(
    session: Session,
    user: models.User,
    *,
    name: str,
    scopes: list[str],
    ttl: timedelta,
    now: datetime,
    key: bytes,
) -> tuple[str, models.ApiToken]:
    wanted = sorted(set(scopes))
    if not wanted or any(s not in SCOPES for s in wanted):
        raise UsageError(f"choose scopes among: {', '.join(SCOPES)}")
    if "admin" in wanted and not user.is_admin:
        raise ForbiddenError("only administrators can create tokens with the admin scope")
    if user.service_scopes is not None and not set(wanted) <= set(user.service_scopes.split()):
        raise ForbiddenError(f"{user.email} is a service account limited to: {user.service_scopes}")
    if ttl > MAX_TOKEN_TTL:
        raise UsageError("a token lives at most 366 days")
    token = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = models.ApiToken(
        id=secrets.token_hex(16),
        user_id=user.id,
        name=name,
        scopes=" ".join(wanted),
        token_hmac=token_hmac(key, token),
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        Event.AUTH_TOKEN_CREATED,
        now=now,
        actor=user.email,
        subject=row.id,
        details={"scopes": row.scopes, "name": name},
    )
    session.commit()
    return token, row


def of_user(session: Session, user: models.User) -> list[models.ApiToken]:
    stmt = (
        select(models.ApiToken)
        .where(models.ApiToken.user_id == user.id)
        .order_by(models.ApiToken.created_at, models.ApiToken.id)
    )
    return list(session.scalars(stmt))


def revoke(session: Session, user: models.User, token_id: str, *, now: datetime) -> None:
    row = session.get(models.ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFoundError("no such token")
    session.delete(row)
    audit.record(session, Event.AUTH_TOKEN_REVOKED, now=now, actor=user.email, subject=row.id)
    session.commit()


def find(session: Session, token: str, *, now: datetime, key: bytes) -> models.ApiToken:
    digest = token_hmac(key, token)
    row = session.scalars(
        select(models.ApiToken).where(models.ApiToken.token_hmac == digest)
    ).first()
    if row is None or row.expires_at <= now:
        raise AuthError("this API token is invalid or has expired")
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        row.last_used_at = now
        session.commit()
    return row
