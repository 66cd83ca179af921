"""An account's second factor as a whole: which methods it has (TOTP, passkeys), and the
single-use recovery codes that stand in for any of them.

Ten codes are issued with the account's first second factor, whichever it is, and dropped with
its last: disabling TOTP while a passkey remains keeps them, and a new factor added beside an
existing one issues none. Codes carry 80 random bits and are stored as SHA-256 hashes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pli.errors import AuthError
from pli.store import models

RECOVERY_CODES = 10
TOTP, PASSKEY = "totp", "passkey"


def methods(session: Session, user: models.User) -> list[str]:
    """The second factors the account has: ["totp"], ["passkey"], both, or none."""
    found = [TOTP] if user.totp_enabled_at is not None else []
    if passkey_count(session, user):
        found.append(PASSKEY)
    return found


def passkey_count(session: Session, user: models.User) -> int:
    query = select(func.count()).where(models.Passkey.user_id == user.id)
    return int(session.scalar(query) or 0)


def issue(user: models.User) -> list[str]:
    """New codes, replacing any the account had: shown once, the caller commits."""
    codes = [_code() for _ in range(RECOVERY_CODES)]
    user.recovery_codes = " ".join(_hash(c) for c in codes)
    return codes


def left(user: models.User) -> int:
    return len((user.recovery_codes or "").split())


def use(session: Session, user: models.User, code: str) -> None:
    """Spend one of the account's codes (dashes, spaces and case do not matter)."""
    remaining = (user.recovery_codes or "").split()
    digest = _hash(code)
    if not any(hmac.compare_digest(digest, h) for h in remaining):
        raise AuthError("wrong one-time code")
    user.recovery_codes = " ".join(h for h in remaining if h != digest) or None
    session.commit()


def forget_unless_protected(session: Session, user: models.User) -> None:
    """Drop the codes once the account has no second factor left (the caller commits)."""
    if not methods(session, user):
        user.recovery_codes = None


def _code() -> str:
    raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii")  # 80 bits, 16 characters
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


def _hash(code: str) -> str:
    cleaned = code.replace(" ", "").replace("-", "").upper()
    # Only the alphabet codes are made of reaches the hash: anything else is no code of ours.
    if not cleaned.isascii():
        return ""
    return hashlib.sha256(cleaned.encode("ascii")).hexdigest()
