"""Groups: their signed history with the proofs a sender's client checks, and the changes
their administrators sign (docs/spec/groups.md)."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from pli.server import deps
from pli.server.groups import service
from pli.server.keys import log as key_log
from pli.server.keys.routes import LogProof, LogSize, consistency, log_proof

router = APIRouter(prefix="/api/v1", tags=["groups"])


class Organisation(BaseModel):
    slug: str
    name: str


class Member(BaseModel):
    email: str
    role: Literal["admin", "member"]


class Signer(BaseModel):
    bundle: dict[str, Any] = Field(description="the signed public bundle of a signing device")
    proof: LogProof = Field(description="the key log entry that made that device active")


class GroupLog(BaseModel):
    head: dict[str, Any] = Field(description="a signed tree head of the key log")
    consistency: list[str] | None = Field(
        description="with `log_size`: the consistency proof from that size to the head's, hex"
    )


class GroupView(BaseModel):
    id: str
    name: str = Field(examples=["ars-idf/veille"])
    title: str
    organisation: Organisation
    founder: str = Field(description="the account the server's administrator named founder")
    changes: list[dict[str, Any]] = Field(description="the signed changes, in order")
    members: list[Member] = Field(description="the server's view, for display only")
    signers: list[Signer]
    entries: list[LogProof] = Field(description="per change, the proof of its key log entry")
    log: GroupLog


class ChangeRequest(BaseModel):
    change: dict[str, Any] = Field(description="a group change (pli/group-change/v1), signed")


class Applied(BaseModel):
    name: str
    seq: int
    log_index: int


class OwnGroup(BaseModel):
    name: str
    title: str
    role: Literal["admin", "member"]


class OwnGroups(BaseModel):
    items: list[OwnGroup]


@router.get("/groups/{org}/{group}")
def group(
    org: str,
    group: str,
    _user: deps.User,
    session: deps.DB,
    config: deps.Config,
    key: deps.SigningKey,
    log_size: LogSize = None,
) -> GroupView:
    """A group's signed history, with the keys that signed it and every proof a sender's
    client checks before it encrypts to the members the history gives."""
    record = service.find(session, f"{org}/{group}")
    head = key_log.head(session, key, config.clock())
    signers = service.signer_devices(session, record)
    return GroupView(
        id=record.group.id,
        name=record.name,
        title=record.group.title,
        organisation=Organisation(slug=record.organisation.slug, name=record.organisation.name),
        founder=record.founder,
        changes=[json.loads(c.change) for c in record.changes],
        members=[Member(email=e, role=_role(r)) for e, r in service.members(session, record)],
        signers=[
            Signer(
                bundle=json.loads(d.bundle),
                proof=log_proof(session, d.log_index, head.size, f"device {d.id}"),
            )
            for d in signers
        ],
        entries=[
            log_proof(session, c.log_index, head.size, f"change {c.seq} of {record.name}")
            for c in record.changes
        ],
        log=GroupLog(head=head.signed(), consistency=consistency(session, log_size, head.size)),
    )


def _role(role: str) -> Literal["admin", "member"]:
    return "admin" if role == "admin" else "member"


@router.post("/groups/{org}/{group}/changes", status_code=201)
def change(
    org: str,
    group: str,
    body: ChangeRequest,
    caller: deps.LoggedIn,
    session: deps.DB,
    config: deps.Config,
) -> Applied:
    """Apply one change signed by one of the caller's devices, the caller being an
    administrator of the group (or its founder, for its first change)."""
    row = service.apply(session, f"{org}/{group}", caller.user, body.change, now=config.clock())
    return Applied(name=f"{org}/{group}".lower(), seq=row.seq, log_index=row.log_index)


@router.get("/me/groups")
def own_groups(user: deps.User, session: deps.DB) -> OwnGroups:
    """The groups the caller is a member of, with its role in each."""
    return OwnGroups(
        items=[
            OwnGroup(name=name, title=title, role=_role(role))
            for name, title, role in service.of_user(session, user)
        ]
    )
