"""Publish this device's keys; look up anyone's; find accounts; fetch one's own escrowed
private bundles."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from pli.errors import UsageError
from pli.server import deps
from pli.server.keys import service

router = APIRouter(prefix="/api/v1", tags=["keys"])


class PublishRequest(BaseModel):
    bundle: dict[str, Any]
    escrow: str | None = Field(default=None, max_length=128 << 10, description="base64 age file")


class DeviceKeys(BaseModel):
    email: str
    devices: list[dict[str, Any]]


class EscrowedKey(BaseModel):
    device: str
    escrow: str


@router.post("/devices", status_code=201)
def publish(
    body: PublishRequest, caller: deps.LoggedIn, session: deps.DB, config: deps.Config
) -> DeviceKeys:
    escrow = _b64(body.escrow) if body.escrow is not None else None
    service.publish(session, caller.user, body.bundle, escrow, now=config.clock())
    return DeviceKeys(email=caller.user.email, devices=service.bundles_of(session, caller.user))


@router.get("/users/{email}/devices")
def devices(email: str, _user: deps.User, session: deps.DB) -> DeviceKeys:
    owner = service.user_by_email(session, email)
    return DeviceKeys(email=owner.email, devices=service.bundles_of(session, owner))


class Entry(BaseModel):
    kind: Literal["user"] = "user"
    email: str
    devices: int = Field(description="devices with published keys: what a send encrypts to")


@router.get("/directory")
def directory(
    _user: deps.Sender,
    session: deps.DB,
    q: Annotated[str, Query(min_length=2, max_length=254, description="part of an email")],
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[Entry]:
    """Accounts of this server that can receive, whose email contains `q`: what a sender picks
    recipients from. Their keys come from `/users/{email}/devices`, checked by the client."""
    return [Entry(email=e, devices=n) for e, n in service.search(session, q, limit=limit)]


@router.get("/me/escrow")
def escrowed(caller: deps.LoggedIn, session: deps.DB) -> list[EscrowedKey]:
    return [
        EscrowedKey(device=d.id, escrow=base64.b64encode(d.escrow).decode("ascii"))
        for d in service.devices_of(session, caller.user)
        if d.escrow is not None
    ]


class EscrowUpdate(BaseModel):
    escrow: str = Field(max_length=128 << 10, description="base64 age file")


@router.put("/devices/{device_id}/escrow", status_code=204)
def replace_escrow(
    device_id: str, body: EscrowUpdate, caller: deps.LoggedIn, session: deps.DB, config: deps.Config
) -> None:
    service.set_escrow(session, caller.user, device_id, _b64(body.escrow), now=config.clock())


def _b64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or a str that is not ASCII at all
        raise UsageError("escrow must be base64") from exc
