"""Key publication and lookup. The server checks a bundle's shape and self-signature so it
stores nothing malformed; clients never rely on that check and verify for themselves."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.crypto.signing import canonical_json
from pli.errors import ConflictError, CryptoError, ForbiddenError, NotFoundError, UsageError
from pli.store import models

MAX_ESCROW_BYTES = 64 << 10


def publish(
    session: Session,
    user: models.User,
    signed: dict[str, object],
    escrow: bytes | None,
    *,
    now: datetime,
) -> PublicBundle:
    try:
        bundle = parse_bundle(signed)
    except CryptoError as exc:
        raise UsageError(f"the key bundle was refused: {exc.message}") from exc
    if bundle.email != user.email:
        raise ForbiddenError("a key bundle must name the account that publishes it")
    if escrow is not None and len(escrow) > MAX_ESCROW_BYTES:
        raise UsageError("the escrowed key is too large")
    if session.get(models.Device, bundle.device) is not None:
        raise ConflictError("this device is already registered")
    first = not devices_of(session, user)
    session.add(
        models.Device(
            id=bundle.device,
            user_id=user.id,
            bundle=canonical_json(bundle.signed).decode("utf-8"),
            escrow=escrow,
            created_at=now,
        )
    )
    audit.record(
        session,
        Event.KEYS_PUBLISHED if first else Event.KEYS_CHANGED,
        now=now,
        actor=user.email,
        subject=bundle.device,
        details={"change": "first device" if first else "device added"},
    )
    session.commit()
    return bundle


def user_by_email(session: Session, email: str) -> models.User:
    found = session.scalars(select(models.User).where(models.User.email == email.lower())).first()
    if found is None:
        raise NotFoundError(f"there is no account for {email}")
    return found


def devices_of(session: Session, user: models.User) -> list[models.Device]:
    stmt = (
        select(models.Device)
        .where(models.Device.user_id == user.id)
        .order_by(models.Device.created_at, models.Device.id)
    )
    return list(session.scalars(stmt))


def bundles_of(session: Session, user: models.User) -> list[dict[str, object]]:
    return [json.loads(d.bundle) for d in devices_of(session, user)]


def set_escrow(
    session: Session, user: models.User, device_id: str, escrow: bytes, *, now: datetime
) -> None:
    """Replace the escrowed private bundle of one of the user's own devices."""
    device = session.get(models.Device, device_id)
    if device is None or device.user_id != user.id:
        raise NotFoundError("no such device of yours")
    if not escrow or len(escrow) > MAX_ESCROW_BYTES:
        raise UsageError("the escrowed key is empty or too large")
    device.escrow = escrow
    audit.record(
        session,
        Event.KEYS_CHANGED,
        now=now,
        actor=user.email,
        subject=device_id,
        details={"change": "escrowed key re-wrapped"},
    )
    session.commit()


def search(session: Session, text: str, *, limit: int) -> list[tuple[str, int]]:
    """Active accounts that can receive (at least one published device) whose email contains
    `text`, case-insensitively, in email order: (email, number of devices)."""
    devices = func.count(models.Device.id)
    stmt = (
        select(models.User.email, devices)
        .join(models.Device, models.Device.user_id == models.User.id)
        .where(
            models.User.disabled_at.is_(None),
            models.User.email.contains(text.strip().lower(), autoescape=True),
        )
        .group_by(models.User.id, models.User.email)
        .order_by(models.User.email)
        .limit(limit)
    )
    return [(email, count) for email, count in session.execute(stmt)]
