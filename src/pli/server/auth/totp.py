"""TOTP second factor (RFC 6238) with single-use recovery codes.

The seed is sealed under the server key (pli.crypto.sealing); each accepted code's time step
is remembered so a code cannot be replayed; recovery codes are stored as SHA-256 hashes (they
carry 80 random bits) and each works once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime

import pyotp
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.crypto import sealing
from pli.errors import AuthError, ConflictError
from pli.store import models

PURPOSE = "totp-seed"
RECOVERY_CODES = 10
STEP = 30


def begin(session: Session, user: models.User, *, key: bytes) -> tuple[str, str]:
    """A new seed, pending until a first code confirms it: (seed in base32, otpauth URI)."""
    if user.totp_enabled_at is not None:
        raise ConflictError("a second factor is already enabled: disable it first")
    seed = pyotp.random_base32(32)
    user.totp_secret = sealing.seal(key, PURPOSE, seed.encode("ascii"))
    session.commit()
    return seed, pyotp.TOTP(seed).provisioning_uri(name=user.email, issuer_name="pli")


def confirm(
    session: Session, user: models.User, code: str, *, key: bytes, now: datetime
) -> list[str]:
    """Enable the pending seed with a first code; returns the recovery codes, shown once."""
    if user.totp_secret is None or user.totp_enabled_at is not None:
        raise ConflictError("there is no pending second factor to confirm")
    user.totp_last_step = _matching_step(user, code, key=key, now=now)
    codes = [_recovery_code() for _ in range(RECOVERY_CODES)]
    user.recovery_codes = " ".join(_hash(c) for c in codes)
    user.totp_enabled_at = now
    audit.record(
        session,
        Event.AUTH_SECOND_FACTOR_CHANGED,
        now=now,
        actor=user.email,
        details={"totp": "enabled"},
    )
    session.commit()
    return codes


def verify(session: Session, user: models.User, code: str, *, key: bytes, now: datetime) -> None:
    """Accept a current TOTP code not used before, or an unused recovery code."""
    cleaned = code.replace(" ", "").replace("-", "").upper()
    if cleaned.isdigit():
        step = _matching_step(user, cleaned, key=key, now=now)
        if user.totp_last_step is not None and step <= user.totp_last_step:
            raise AuthError("this one-time code was already used: wait for the next one")
        user.totp_last_step = step
        session.commit()
        return
    remaining = (user.recovery_codes or "").split()
    digest = _hash(cleaned)
    if not any(hmac.compare_digest(digest, h) for h in remaining):
        raise AuthError("wrong one-time code")
    user.recovery_codes = " ".join(h for h in remaining if h != digest)
    session.commit()


def disable(session: Session, user: models.User, code: str, *, key: bytes, now: datetime) -> None:
    if user.totp_enabled_at is None:
        raise ConflictError("no second factor is enabled")
    verify(session, user, code, key=key, now=now)
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = user.recovery_codes = None
    audit.record(
        session,
        Event.AUTH_SECOND_FACTOR_CHANGED,
        now=now,
        actor=user.email,
        details={"totp": "disabled"},
    )
    session.commit()


def _matching_step(user: models.User, code: str, *, key: bytes, now: datetime) -> int:
    if user.totp_secret is None:
        raise AuthError("wrong one-time code")
    totp = pyotp.TOTP(sealing.unseal(key, PURPOSE, user.totp_secret).decode("ascii"))
    current = int(now.timestamp()) // STEP
    for step in (current - 1, current, current + 1):  # one step of clock drift either way
        # Bytes: compare_digest refuses str with non-ASCII characters (a TypeError, a 500).
        if hmac.compare_digest(totp.at(step * STEP).encode(), code.strip().encode()):
            return step
    raise AuthError("wrong one-time code")


def _recovery_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii")  # 80 bits, 16 characters
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _hash(code: str) -> str:
    return hashlib.sha256(code.replace("-", "").upper().encode("ascii")).hexdigest()
