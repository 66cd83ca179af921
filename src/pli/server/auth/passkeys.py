"""Passkeys (WebAuthn) as a second factor: enrolment, assertions for a login or to confirm a
change, removal. The checks of what an authenticator answers are pli.crypto.passkeys'; here
is what the server keeps and how it is spent.

Challenges are random, kept server-side for CHALLENGE_TTL, bound to one account and one
purpose ("register", "login", "confirm"), and consumed by the first attempt that names them,
whether it succeeds or not: a DELETE that must remove exactly that row, committed before the
answer is even parsed, so two requests can never spend one challenge.

An assertion must raise the passkey's signature counter when either the stored or the new
count is not zero (authenticators that keep no counter always say zero). One that does not
is refused: two authenticators answering for one credential is what a cloned key looks like.
Refusals in assertions are AuthErrors, which the routes count and record like wrong passwords
(pli.server.auth.routes, under the login guard).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError as DBIntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.crypto import passkeys as webauthn
from pli.crypto.passkeys import RelyingParty
from pli.errors import AuthError, ConflictError, CryptoError, GoneError, NotFoundError, UsageError
from pli.server.auth import recovery
from pli.store import models

Purpose = Literal["register", "login", "confirm"]
CHALLENGE_TTL = timedelta(minutes=5)
LIVE_CHALLENGES = 5  # per account and purpose: older ones are dropped when a new one is made
MAX_PASSKEYS = 20
_SPENT = "this passkey request has expired or was already used: start again"
_CLONED = (
    "this passkey's signature counter did not increase, as happens when a passkey was "
    "copied: it was refused; sign in with another second factor and remove it"
)


def of_user(session: Session, user: models.User) -> list[models.Passkey]:
    return list(
        session.scalars(
            select(models.Passkey)
            .where(models.Passkey.user_id == user.id)
            .order_by(models.Passkey.created_at, models.Passkey.id)
        )
    )


def find(session: Session, user: models.User, passkey_id: str) -> models.Passkey:
    """One of the account's passkeys; anyone else's is not found, like one that never was."""
    row = session.scalars(
        select(models.Passkey).where(
            models.Passkey.id == passkey_id, models.Passkey.user_id == user.id
        )
    ).first()
    if row is None:
        raise NotFoundError("this account has no such passkey")
    return row


def registration_options(
    session: Session, user: models.User, *, party: RelyingParty, now: datetime
) -> tuple[str, dict[str, Any]]:
    """(challenge id, creation options) for a new passkey of the account."""
    existing = of_user(session, user)
    if len(existing) >= MAX_PASSKEYS:
        raise ConflictError(f"this account has {MAX_PASSKEYS} passkeys: remove one first")
    if user.passkey_handle is None:
        user.passkey_handle = webauthn.new_user_handle()
    challenge_id, challenge = _new_challenge(session, user, "register", now=now)
    options = webauthn.registration_options(
        party,
        user_handle=user.passkey_handle,
        user_name=user.email,
        challenge=challenge,
        exclude=[_stored(p) for p in existing],
    )
    session.commit()
    return challenge_id, options


def register(
    session: Session,
    user: models.User,
    challenge_id: str,
    credential: dict[str, Any],
    name: str,
    *,
    party: RelyingParty,
    now: datetime,
) -> tuple[models.Passkey, list[str]]:
    """Keep the passkey a registration response proves; with the recovery codes, shown once,
    when it is the account's first second factor (else none)."""
    name = name.strip()
    if not name or not name.isprintable():
        raise UsageError("give the passkey a name of printable characters, such as 'laptop'")
    challenge = _consume(session, user, challenge_id, "register", now=now)
    made = webauthn.verify_registration(credential, challenge=challenge, party=party)
    first = not recovery.methods(session, user)
    row = models.Passkey(
        id=secrets.token_hex(16),
        user_id=user.id,
        credential_id=made.credential_id,
        public_key=made.public_key,
        sign_count=made.sign_count,
        rp_id=party.rp_id,
        transports=" ".join(made.transports),
        name=name,
        created_at=now,
    )
    session.add(row)
    try:
        session.flush()
    except DBIntegrityError as exc:  # the same credential, on this account or another one
        session.rollback()
        raise ConflictError("this passkey is registered already") from exc
    codes = recovery.issue(user) if first else []
    audit.record(
        session,
        Event.AUTH_SECOND_FACTOR_CHANGED,
        now=now,
        actor=user.email,
        subject=row.id,
        details={"passkey": "added", "name": name},
    )
    session.commit()
    return row, codes


def assertion_options(
    session: Session,
    user: models.User,
    *,
    purpose: Literal["login", "confirm"],
    party: RelyingParty,
    now: datetime,
) -> tuple[str, dict[str, Any]]:
    """(challenge id, request options) for an assertion by one of the account's passkeys."""
    existing = of_user(session, user)
    if not existing:
        raise ConflictError(
            "this account has no passkey: use its one-time code or a recovery code instead"
        )
    challenge_id, challenge = _new_challenge(session, user, purpose, now=now)
    options = webauthn.authentication_options(
        party, challenge=challenge, allow=[_stored(p) for p in existing]
    )
    session.commit()
    return challenge_id, options


def verify_assertion(
    session: Session,
    user: models.User,
    challenge_id: str,
    credential: dict[str, Any],
    *,
    purpose: Literal["login", "confirm"],
    origin: str,
    now: datetime,
) -> models.Passkey:
    """The account's passkey that made this assertion, its counter and last use updated.
    Raises AuthError."""
    challenge = _consume(session, user, challenge_id, purpose, now=now)
    try:
        claim = webauthn.claim(credential)
    except CryptoError as exc:
        raise AuthError(exc.message) from exc
    row = session.scalars(
        select(models.Passkey).where(
            models.Passkey.user_id == user.id,
            models.Passkey.credential_id == claim.credential_id,
        )
    ).first()
    if row is None or claim.user_handle not in (None, user.passkey_handle):
        raise AuthError("this passkey is not one of this account's")
    try:
        asserted = webauthn.verify_authentication(
            credential,
            challenge=challenge,
            # The RP id it was made for; the origin the browser is at now.
            party=RelyingParty(rp_id=row.rp_id, origin=origin),
            public_key=row.public_key,
        )
    except CryptoError as exc:
        raise AuthError(exc.message) from exc
    _count(session, row, asserted.sign_count, now=now)
    return row


def remove(session: Session, user: models.User, row: models.Passkey, *, now: datetime) -> None:
    """Delete one of the account's passkeys (the caller has had a second factor proven).
    With its last second factor, the account's recovery codes go too."""
    session.delete(row)
    session.flush()
    recovery.forget_unless_protected(session, user)
    audit.record(
        session,
        Event.AUTH_SECOND_FACTOR_CHANGED,
        now=now,
        actor=user.email,
        subject=row.id,
        details={"passkey": "removed", "name": row.name},
    )
    session.commit()


def _count(session: Session, row: models.Passkey, sign_count: int, *, now: datetime) -> None:
    """Record a use; refuse a counter that did not grow (see the module's docstring). The
    UPDATE compares in the database, so two assertions racing cannot both raise it to one
    value."""
    if sign_count == 0 and row.sign_count == 0:
        row.last_used_at = now
        session.commit()
        return
    raised = session.execute(
        update(models.Passkey)
        .where(models.Passkey.id == row.id, models.Passkey.sign_count < sign_count)
        .values(sign_count=sign_count, last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if getattr(raised, "rowcount", 0) != 1:
        raise AuthError(_CLONED)
    set_committed_value(row, "sign_count", sign_count)
    set_committed_value(row, "last_used_at", now)


def _new_challenge(
    session: Session, user: models.User, purpose: Purpose, *, now: datetime
) -> tuple[str, bytes]:
    """A new challenge (the caller commits). Expired ones, anyone's, are dropped on the way,
    and the account's oldest beyond LIVE_CHALLENGES for this purpose: options asked for over
    and over cannot grow the table."""
    table = models.PasskeyChallenge
    session.execute(delete(table).where(table.expires_at <= now))
    older = session.scalars(
        select(table.id)
        .where(table.user_id == user.id, table.purpose == purpose)
        .order_by(table.created_at.desc(), table.id)
        .offset(LIVE_CHALLENGES - 1)
    ).all()
    if older:
        session.execute(delete(table).where(table.id.in_(older)))
    challenge_id, challenge = secrets.token_hex(16), webauthn.new_challenge()
    session.add(
        table(
            id=challenge_id,
            user_id=user.id,
            purpose=purpose,
            challenge=challenge,
            created_at=now,
            expires_at=now + CHALLENGE_TTL,
        )
    )
    return challenge_id, challenge


def _consume(
    session: Session, user: models.User, challenge_id: str, purpose: Purpose, *, now: datetime
) -> bytes:
    """The challenge, spent: found for this account and purpose, deleted by this request and
    no other, and not expired."""
    table = models.PasskeyChallenge
    mine = (table.id == challenge_id, table.user_id == user.id, table.purpose == purpose)
    found = session.execute(select(table.challenge, table.expires_at).where(*mine)).first()
    spent = session.execute(delete(table).where(*mine))
    session.commit()
    # An enrolment is refused without a 401: its session is fine, only the request is stale.
    refusal = GoneError if purpose == "register" else AuthError
    if found is None or getattr(spent, "rowcount", 0) != 1:
        raise refusal(_SPENT)
    if found.expires_at <= now:
        raise refusal(_SPENT)
    return bytes(found.challenge)


def _stored(row: models.Passkey) -> webauthn.Stored:
    return webauthn.Stored(
        credential_id=row.credential_id,
        public_key=row.public_key,
        sign_count=row.sign_count,
        transports=tuple(row.transports.split()),
    )
