"""TOTP second factor (RFC 6238), beside passkeys (pli.server.auth.passkeys).

The seed is sealed under the server key (pli.crypto.sealing); each accepted code's time step
is remembered so a code cannot be replayed. Where a one-time code is asked for, one of the
account's recovery codes (pli.server.auth.recovery) is accepted too, with or without TOTP.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Literal

import pyotp
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.crypto import sealing
from pli.errors import AuthError, ConflictError
from pli.server.auth import recovery
from pli.store import models

PURPOSE = "totp-seed"
STEP = 30


def begin(session: Session, user: models.User, *, key: bytes) -> tuple[str, str]:
    """A new seed, pending until a first code confirms it: (seed in base32, otpauth URI)."""
    if user.totp_enabled_at is not None:
        raise ConflictError("an authenticator app (TOTP) is already enabled: disable it first")
    seed = pyotp.random_base32(32)
    user.totp_secret = sealing.seal(key, PURPOSE, seed.encode("ascii"))
    session.commit()
    return seed, pyotp.TOTP(seed).provisioning_uri(name=user.email, issuer_name="pli")


def confirm(
    session: Session, user: models.User, code: str, *, key: bytes, now: datetime
) -> list[str]:
    """Enable the pending seed with a first code; returns the recovery codes, shown once, when
    it is the account's first second factor (none otherwise: the account keeps its codes)."""
    if user.totp_secret is None or user.totp_enabled_at is not None:
        raise ConflictError("there is no pending second factor to confirm")
    user.totp_last_step = _matching_step(user, code, key=key, now=now)
    codes = [] if recovery.methods(session, user) else recovery.issue(user)
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


def verify(
    session: Session, user: models.User, code: str, *, key: bytes, now: datetime
) -> Literal["totp", "recovery"]:
    """Accept a current TOTP code not used before, or an unused recovery code: which it was."""
    cleaned = code.replace(" ", "").replace("-", "").upper()
    if cleaned.isdigit():
        if user.totp_enabled_at is None:  # a pending seed proves nothing yet
            raise AuthError("wrong one-time code")
        step = _matching_step(user, cleaned, key=key, now=now)
        if user.totp_last_step is not None and step <= user.totp_last_step:
            raise AuthError("this one-time code was already used: wait for the next one")
        user.totp_last_step = step
        session.commit()
        return "totp"
    recovery.use(session, user, cleaned)
    return "recovery"


def disable(session: Session, user: models.User, code: str, *, key: bytes, now: datetime) -> None:
    """Turn TOTP off, with a current code or a recovery code. The recovery codes stay while
    the account has a passkey."""
    if user.totp_enabled_at is None:
        raise ConflictError("no authenticator app (TOTP) is enabled")
    verify(session, user, code, key=key, now=now)
    user.totp_secret = user.totp_enabled_at = user.totp_last_step = None
    recovery.forget_unless_protected(session, user)
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
