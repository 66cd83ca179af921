"""Publish this device's keys; look up anyone's; find accounts; fetch one's own escrowed
private bundles."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from pli.errors import IntegrityError, UsageError
from pli.server import deps
from pli.server.groups import service as group_service
from pli.server.keys import log as key_log
from pli.server.keys import service
from pli.store import models

router = APIRouter(prefix="/api/v1", tags=["keys"])


class PublishRequest(BaseModel):
    bundle: dict[str, Any]
    escrow: str | None = Field(default=None, max_length=128 << 10, description="base64 age file")


class Published(BaseModel):
    email: str
    device: str
    state: Literal["active", "pending"] = Field(
        description="pending: one of the account's active devices must approve it first"
    )


class LogProof(BaseModel):
    index: int = Field(description="the index of the key log entry that made the device active")
    leaf: str = Field(description="that entry, exactly as logged (canonical JSON)")
    path: list[str] = Field(description="its inclusion proof in the tree of `head`, hex")


class KeyLogView(BaseModel):
    head: dict[str, Any] = Field(description="a signed tree head of the key log")
    consistency: list[str] | None = Field(
        description="with `log_size`: the consistency proof between that size and the head's, "
        "hex; null if the log never had that size"
    )
    proofs: list[LogProof] = Field(description="one per device, in the same order")


class DeviceKeys(BaseModel):
    email: str
    devices: list[dict[str, Any]]
    approvals: list[dict[str, Any] | None] = Field(
        description="one per device: the signed approval by another of the account's devices "
        "that made it active, or null for a first device"
    )
    log: KeyLogView


class EscrowedKey(BaseModel):
    device: str
    escrow: str
    state: Literal["active", "pending"] = Field(
        default="active", description="pending: the device waits for one of yours to approve it"
    )


# The size of the key log head the client holds: answers carry the consistency proof from it.
LogSize = Annotated[
    int | None, Query(ge=0, le=1 << 53, description="the size of the head the client holds")
]


@router.post("/devices", status_code=201)
def publish(
    body: PublishRequest, caller: deps.KeyHolder, session: deps.DB, config: deps.Config
) -> Published:
    """Publish this device's keys: active at once for an account's first device, else pending
    until one of its active devices approves it."""
    escrow = _b64(body.escrow) if body.escrow is not None else None
    device = service.publish(session, caller.user, body.bundle, escrow, now=config.clock())
    state: Literal["active", "pending"] = "active" if device.state == "active" else "pending"
    return Published(email=caller.user.email, device=device.id, state=state)


@router.get("/users/{email}/devices")
def devices(
    email: str,
    _user: deps.User,
    session: deps.DB,
    config: deps.Config,
    key: deps.SigningKey,
    log_size: LogSize = None,
) -> DeviceKeys:
    """The active devices of an account, each with the approval and the key log proof a
    client checks before it uses them."""
    owner = service.user_by_email(session, email)
    active = service.devices_of(session, owner)
    head = key_log.head(session, key, config.clock())
    return DeviceKeys(
        email=owner.email,
        devices=[json.loads(d.bundle) for d in active],
        approvals=[json.loads(d.approval) if d.approval else None for d in active],
        log=KeyLogView(
            head=head.signed(),
            consistency=consistency(session, log_size, head.size),
            proofs=[_proof(session, d, head.size) for d in active],
        ),
    )


def consistency(session: deps.DB, log_size: int | None, size: int) -> list[str] | None:
    """The consistency proof from the client's `log_size` to `size`, hex; None if the log
    never had that size (or the client holds no head)."""
    if log_size is None or log_size > size:
        return None
    return [h.hex() for h in key_log.consistency_proof(session, log_size, size)]


def _proof(session: deps.DB, device: models.Device, size: int) -> LogProof:
    return log_proof(session, device.log_index, size, f"device {device.id}")


def log_proof(session: deps.DB, index: int | None, size: int, what: str) -> LogProof:
    """The proof that key log entry `index` (what records `what`) is in the tree of `size`."""
    if index is None or index >= size:
        raise IntegrityError(f"{what} is not in the key log")
    leaf = key_log.leaf(session, index).decode("utf-8")
    path = [h.hex() for h in key_log.inclusion_proof(session, index, size)]
    return LogProof(index=index, leaf=leaf, path=path)


class Entry(BaseModel):
    kind: Literal["user", "service", "group", "organisation"] = Field(
        default="user",
        description="a person, a service account that receives, a group, or an organisation",
    )
    email: str | None = Field(default=None, description="a user's or service's address")
    name: str | None = Field(
        default=None, description="a group's name (org/group), an organisation's slug"
    )
    title: str | None = Field(default=None, description="a group's or organisation's name")
    devices: int = Field(
        default=0, description="devices with published keys: what a send encrypts to"
    )
    members: int | None = Field(default=None, description="a group's members")


@router.get("/directory")
def directory(
    _user: deps.Sender,
    session: deps.DB,
    q: Annotated[str, Query(min_length=2, max_length=254, description="part of a name")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[Entry]:
    """Accounts of this server that can receive whose email contains `q`, then groups and
    organisations whose name contains it: what a sender picks recipients from. Keys and
    memberships come from `/users/{email}/devices` and `/groups/{org}/{group}`, checked by
    the client."""
    found = [
        Entry(kind="service" if s else "user", email=e, devices=n)
        for e, n, s in service.search(session, q, limit=limit)
    ]
    found += [
        Entry(kind="group", name=name, title=title, members=n)
        for name, title, n in group_service.search(session, q, limit=limit)
    ]
    found += [
        Entry(kind="organisation", name=slug, title=title)
        for slug, title in group_service.search_organisations(session, q, limit=limit)
    ]
    return found[:limit]


@router.get("/me/escrow")
def escrowed(caller: deps.LoggedIn, session: deps.DB) -> list[EscrowedKey]:
    """The escrowed private bundles of the caller's active and pending devices (a pending one
    must still open where it was made, to learn it was approved)."""
    states = (service.ACTIVE, service.PENDING)
    return [
        EscrowedKey(
            device=d.id,
            escrow=base64.b64encode(d.escrow).decode("ascii"),
            state="pending" if d.state == service.PENDING else "active",
        )
        for d in service.devices_of(session, caller.user, states)
        if d.escrow is not None
    ]


class EscrowUpdate(BaseModel):
    escrow: str = Field(max_length=128 << 10, description="base64 age file")


@router.put("/devices/{device_id}/escrow", status_code=204)
def replace_escrow(
    device_id: str, body: EscrowUpdate, caller: deps.LoggedIn, session: deps.DB, config: deps.Config
) -> None:
    service.set_escrow(session, caller.user, device_id, _b64(body.escrow), now=config.clock())


class OwnDevice(BaseModel):
    device: str
    state: Literal["active", "pending", "removed"]
    bundle: dict[str, Any]
    approval: dict[str, Any] | None
    created_at: datetime
    removed_at: datetime | None


class Signed(BaseModel):
    signed: dict[str, Any] = Field(description="a device approval or removal, signed")


class OwnDevices(BaseModel):
    items: list[OwnDevice]


@router.get("/me/devices")
def own_devices(caller: deps.KeyHolder, session: deps.DB) -> OwnDevices:
    """Every device of the caller's account: active, waiting for approval, or removed."""
    listed = service.devices_of(session, caller.user, states=service.ALL)
    return OwnDevices(items=[_own(d) for d in listed])


@router.post("/me/devices/{device_id}/approve")
def approve(
    device_id: str, body: Signed, caller: deps.KeyHolder, session: deps.DB, config: deps.Config
) -> OwnDevice:
    """Make a pending device active, with an approval signed by an active device."""
    device = service.approve(session, caller.user, device_id, body.signed, now=config.clock())
    return _own(device)


@router.post("/me/devices/{device_id}/remove", status_code=204)
def remove(
    device_id: str, body: Signed, caller: deps.KeyHolder, session: deps.DB, config: deps.Config
) -> None:
    """Remove a device, with a removal signed by an active device (itself included)."""
    service.remove(session, caller.user, device_id, body.signed, now=config.clock())


def _own(device: models.Device) -> OwnDevice:
    return OwnDevice(
        device=device.id,
        state=device.state,  # type: ignore[arg-type]  # one of the three, by construction
        bundle=json.loads(device.bundle),
        approval=json.loads(device.approval) if device.approval else None,
        created_at=device.created_at,
        removed_at=device.removed_at,
    )


class Proof(BaseModel):
    proof: list[str] = Field(description="hashes, hex")


class Leaves(BaseModel):
    leaves: list[str] = Field(description="the entries, exactly as logged (canonical JSON)")


@router.get("/key-log/head")
def log_head(
    _user: deps.User, session: deps.DB, config: deps.Config, key: deps.SigningKey
) -> dict[str, Any]:
    """A signed tree head of the key log as it is now."""
    return key_log.head(session, key, config.clock()).signed()


@router.get("/key-log/consistency")
def log_consistency(
    _user: deps.User,
    session: deps.DB,
    first: Annotated[int, Query(ge=0, le=1 << 53)],
    second: Annotated[int, Query(ge=0, le=1 << 53)],
) -> Proof:
    """The consistency proof from the tree of `first` entries to that of `second`."""
    if not first <= second <= key_log.size(session):
        raise UsageError("the key log has no such sizes")
    return Proof(proof=[h.hex() for h in key_log.consistency_proof(session, first, second)])


@router.get("/key-log/entries")
def log_entries(
    _user: deps.User,
    session: deps.DB,
    start: Annotated[int, Query(ge=0, le=1 << 53)],
    end: Annotated[int, Query(ge=0, le=1 << 53)],
) -> Leaves:
    """Entries [start, end) of the key log, at most 1000 at a time: what `pli keys audit`
    reads."""
    if end > key_log.size(session):
        raise UsageError("the key log has fewer entries")
    return Leaves(leaves=[leaf.decode("utf-8") for leaf in key_log.leaves(session, start, end)])


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or a str that is not ASCII at all
        raise UsageError("escrow must be base64") from exc
