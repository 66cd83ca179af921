"""Key publication and lookup. The server checks a bundle's shape and self-signature so it
stores nothing malformed; clients never rely on that check and verify for themselves."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.crypto import devices, keylog
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.crypto.signing import canonical_json
from pli.errors import ConflictError, CryptoError, ForbiddenError, NotFoundError, UsageError
from pli.server.keys import log as key_log
from pli.store import models

MAX_ESCROW_BYTES = 64 << 10


ACTIVE, PENDING, REMOVED = "active", "pending", "removed"
ALL = (ACTIVE, PENDING, REMOVED)


def publish(
    session: Session,
    user: models.User,
    signed: dict[str, object],
    escrow: bytes | None,
    *,
    now: datetime,
) -> models.Device:
    """Store a device's signed public bundle. The account's first device is active at once
    (and logged); a later one waits, pending, until one of the active devices approves it."""
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
    _lock(session, user)
    first = not devices_of(session, user)
    device = models.Device(
        id=bundle.device,
        user_id=user.id,
        bundle=canonical_json(bundle.signed).decode("utf-8"),
        escrow=escrow,
        created_at=now,
        state=ACTIVE if first else PENDING,
    )
    if first:
        device.log_index = key_log.append(session, keylog.device_published(bundle, now))
    session.add(device)
    audit.record(
        session,
        Event.KEYS_PUBLISHED if first else Event.KEYS_CHANGED,
        now=now,
        actor=user.email,
        subject=bundle.device,
        details={"change": "first device" if first else "device waiting for approval"},
    )
    session.commit()
    return device


def log_existing_devices(session: Session, *, now: datetime) -> int:
    """Log the active devices published before the key log existed, oldest first, as
    published now: run at every start, it finds nothing to do once they are. Returns how many
    it logged."""
    # FOR UPDATE: an instance starting at the same moment waits, then finds them logged.
    stmt = (
        select(models.Device)
        .where(models.Device.state == ACTIVE, models.Device.log_index.is_(None))
        .order_by(models.Device.created_at, models.Device.id)
        .with_for_update()
    )
    logged = 0
    for device in session.scalars(stmt).all():
        device.log_index = key_log.append(session, keylog.device_published(_bundle(device), now))
        logged += 1
    session.commit()
    return logged


def approve(
    session: Session, user: models.User, device_id: str, signed: object, *, now: datetime
) -> models.Device:
    """Activate a pending device of `user` with an approval signed by one of its active
    devices (pli.crypto.devices), logged as device-approved."""
    _lock(session, user)
    device = _own(session, user, device_id)
    if device.state != PENDING:
        raise ConflictError(f"device {device_id} is not waiting for approval")
    bundle = _bundle(device)
    approver = _signer(session, user, signed)
    try:
        devices.check_approval(signed, _bundle(approver), bundle)
    except CryptoError as exc:
        raise UsageError(f"the approval was refused: {exc.message}") from exc
    device.log_index = key_log.append(session, keylog.device_approved(bundle, approver.id, now))
    device.state = ACTIVE
    device.approval = canonical_json(signed).decode("utf-8")
    _keys_changed(session, user.email, device_id, now, change="device approved", by=approver.id)
    session.commit()
    return device


def remove(
    session: Session, user: models.User, device_id: str, signed: object, *, now: datetime
) -> None:
    """Remove a device of `user`, pending or active, with a removal signed by one of its
    active devices (the device itself included). Its keys are no longer handed out, and its
    escrowed copy is deleted; an active device's removal is logged."""
    _lock(session, user)
    device = _own(session, user, device_id)
    if device.state == REMOVED:
        raise ConflictError(f"device {device_id} is already removed")
    remover = _signer(session, user, signed)
    if remover.id == device_id:
        raise UsageError(
            "a device does not remove itself", hint="remove it from another of your devices"
        )
    try:
        devices.check_removal(signed, _bundle(remover), device_id)
    except CryptoError as exc:
        raise UsageError(f"the removal was refused: {exc.message}") from exc
    _retire(session, user, device, now=now, by=remover.id)
    session.commit()


def reset(session: Session, user: models.User, *, now: datetime, actor: str) -> int:
    """An administrator's recovery for an account that lost every device: remove them all,
    so that its next device is a first device again. Every correspondent sees its keys
    change. Returns how many devices were removed."""
    _lock(session, user)
    removed = 0
    for device in session.scalars(
        select(models.Device).where(
            models.Device.user_id == user.id, models.Device.state != REMOVED
        )
    ):
        _retire(session, user, device, now=now, by=None, actor=actor)
        removed += 1
    session.commit()
    return removed


def _retire(
    session: Session,
    user: models.User,
    device: models.Device,
    *,
    now: datetime,
    by: str | None,
    actor: str | None = None,
) -> None:
    if device.state == ACTIVE:
        key_log.append(session, keylog.device_removed(user.email, device.id, now))
    device.state, device.removed_at, device.escrow = REMOVED, now, None
    extra = {} if by is None else {"by": by}
    _keys_changed(session, actor or user.email, device.id, now, change="device removed", **extra)


def _lock(session: Session, user: models.User) -> None:
    """Lock the account's row before reading its devices' states (an UPDATE that changes
    nothing: the row's lock on PostgreSQL, the write lock on SQLite, as audit appends do).
    Every change to an account's devices takes it first, so that two at once cannot both act
    on what the other is changing: two first devices, an approval and a removal crossing."""
    session.execute(update(models.User).where(models.User.id == user.id).values(id=models.User.id))


def _keys_changed(
    session: Session, actor: str, device_id: str, now: datetime, **details: str
) -> None:
    audit.record(
        session, Event.KEYS_CHANGED, now=now, actor=actor, subject=device_id, details=details
    )


def _own(session: Session, user: models.User, device_id: str) -> models.Device:
    device = session.get(models.Device, device_id)
    if device is None or device.user_id != user.id:
        raise NotFoundError("no such device of yours")
    return device


def _signer(session: Session, user: models.User, signed: object) -> models.Device:
    """The active device of `user` that `signed` claims to come from."""
    try:
        by = devices.by_of(signed)
    except CryptoError as exc:
        raise UsageError(exc.message) from exc
    device = session.get(models.Device, by)
    if device is None or device.user_id != user.id or device.state != ACTIVE:
        raise ForbiddenError("only an active device of your account can sign this")
    return device


def _bundle(device: models.Device) -> PublicBundle:
    return parse_bundle(json.loads(device.bundle))


def user_by_email(session: Session, email: str) -> models.User:
    found = session.scalars(select(models.User).where(models.User.email == email.lower())).first()
    if found is None:
        raise NotFoundError(f"there is no account for {email}")
    return found


def devices_of(
    session: Session, user: models.User, states: tuple[str, ...] = (ACTIVE,)
) -> list[models.Device]:
    """The account's devices in these states (active ones: those a send encrypts to)."""
    stmt = (
        select(models.Device)
        .where(models.Device.user_id == user.id, models.Device.state.in_(states))
        .order_by(models.Device.created_at, models.Device.id)
    )
    return list(session.scalars(stmt))


def bundles_of(session: Session, user: models.User) -> list[dict[str, object]]:
    return [json.loads(d.bundle) for d in devices_of(session, user)]


def set_escrow(
    session: Session, user: models.User, device_id: str, escrow: bytes, *, now: datetime
) -> None:
    """Replace the escrowed private bundle of one of the user's own devices."""
    device = _own(session, user, device_id)
    if device.state == REMOVED:
        raise ConflictError(f"device {device_id} is removed")
    if not escrow or len(escrow) > MAX_ESCROW_BYTES:
        raise UsageError("the escrowed key is empty or too large")
    device.escrow = escrow
    _keys_changed(session, user.email, device_id, now, change="escrowed key re-wrapped")
    session.commit()


def search(session: Session, text: str, *, limit: int) -> list[tuple[str, int, bool]]:
    """Active accounts that can receive (at least one active device) whose email contains
    `text`, case-insensitively, in email order: (email, number of devices, is a service)."""
    devices = func.count(models.Device.id)
    stmt = (
        select(models.User.email, devices, models.User.service_scopes)
        .join(models.Device, models.Device.user_id == models.User.id)
        .where(
            models.Device.state == ACTIVE,
            models.User.disabled_at.is_(None),
            or_(
                models.User.service_scopes.is_(None),
                models.User.service_scopes.contains("receive", autoescape=True),
            ),
            models.User.email.contains(text.strip().lower(), autoescape=True),
        )
        .group_by(models.User.id, models.User.email, models.User.service_scopes)
        .order_by(models.User.email)
        .limit(limit)
    )
    return [(email, count, scopes is not None) for email, count, scopes in session.execute(stmt)]
