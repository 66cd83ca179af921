"""Share links: made, listed and revoked by their owner; downloaded by anyone holding the URL.

The files of a link are uploaded with the resumable-upload routes and sealed with
`POST /api/v1/transfers/{id}/seal`, as any transfer's: a link's id is its transfer's.
"""

from __future__ import annotations

import base64
from datetime import datetime

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from pli.server import deps
from pli.server.links import service
from pli.server.transfers import service as transfers
from pli.server.transfers.routes import (
    DOWNLOAD_RESPONSES,
    STRICT,
    FileOut,
    IfRangeHeader,
    RangeHeader,
    TransferOut,
    blob_response,
    recorded,
    transfer_out,
)

router = APIRouter(prefix="/api/v1/links", tags=["links"])
# Taking a ticket is what a guesser of ids would do: it is rate-limited per client address.
# What a ticket then opens is not: a link of many files is many requests, each carrying a
# 256-bit ticket no one guesses.
public = APIRouter(prefix="/api/v1/public/links", tags=["public"])


class CreateLink(BaseModel):
    model_config = STRICT

    files: int = Field(ge=1, le=transfers.MAX_FILES)
    expires_in: str | None = Field(default=None, max_length=16, examples=["7d"])
    max_downloads: int | None = Field(
        default=None, ge=1, le=service.MAX_DOWNLOADS, description="null: no limit"
    )


class LinkOut(BaseModel):
    id: str
    url: str = Field(description="the link without its secret, which the owner's client adds")
    state: str = Field(description="uploading, active, exhausted, revoked or expired")
    created_at: datetime
    expires_at: datetime
    max_downloads: int | None
    downloads: int
    downloads_left: int | None
    transfer: TransferOut


class LinkListing(BaseModel):
    items: list[LinkOut] = Field(description="newest first")


class PublicTransferOut(BaseModel):
    id: str
    created_at: datetime
    expires_at: datetime
    files: list[FileOut]
    manifest: str = Field(description="base64 of the age-encrypted, signed manifest")


class TicketOut(BaseModel):
    ticket: str | None = Field(
        description="bearer of the downloads of this link's files; only when it was just taken"
    )
    expires_at: datetime = Field(description="when the ticket stops opening the link")
    transfer: PublicTransferOut


def _out(found: service.LinkView, base: str) -> LinkOut:
    link, transfer = found.link, found.view.transfer
    return LinkOut(
        id=link.id,
        url=f"{base}/l/{link.id}",
        state=found.state,
        created_at=transfer.created_at,
        expires_at=transfer.expires_at,
        max_downloads=link.max_downloads,
        downloads=link.downloads,
        downloads_left=found.downloads_left,
        transfer=transfer_out(found.view),
    )


def _public(view: transfers.TransferView) -> PublicTransferOut:
    t = view.transfer
    return PublicTransferOut(
        id=t.id,
        created_at=t.created_at,
        expires_at=t.expires_at,
        files=[FileOut(id=f.id, size=f.size) for f in view.files],
        manifest=base64.b64encode(t.manifest or b"").decode("ascii"),
    )


@router.post("", status_code=201)
def create(
    body: CreateLink,
    user: deps.Sender,
    session: deps.DB,
    config: deps.Config,
    base: deps.PublicBase,
    rules: deps.Rules,
) -> LinkOut:
    """A link to be: upload its files, then seal it, as a transfer's."""
    rules.check_links()
    expires_in = rules.expiry(body.expires_in)
    made = service.create(
        session,
        user,
        body.files,
        expires_in,
        body.max_downloads,
        now=config.clock(),
        max_expiry=rules.max_expiry,
    )
    return _out(made, base)


@router.get("")
def listing(
    user: deps.Sender,
    session: deps.DB,
    config: deps.Config,
    base: deps.PublicBase,
    limit: int = Query(default=100, ge=1, le=500),
) -> LinkListing:
    found = service.listing(session, user, now=config.clock(), limit=limit)
    return LinkListing(items=[_out(f, base) for f in found])


@router.delete("/{link_id}", status_code=204)
def revoke(
    link_id: str, user: deps.Sender, session: deps.DB, config: deps.Config, blobs: deps.Blobs
) -> None:
    """End the link now: its files are deleted."""
    service.revoke(session, blobs, user, link_id, now=config.clock())


@public.post("/{link_id}/tickets", status_code=201, dependencies=[Depends(deps.public_limit)])
def take_ticket(
    link_id: str, session: deps.DB, config: deps.Config, rules: deps.Rules
) -> TicketOut:
    """Start a download: uses one of the link's downloads. The ticket opens its files, as
    `Authorization: Bearer <ticket>`, until it expires."""
    rules.check_links()
    ticket, expires, view = service.take_ticket(session, link_id, now=config.clock())
    return TicketOut(ticket=ticket, expires_at=expires, transfer=_public(view))


@public.get("/{link_id}")
def show(
    link_id: str, ticket: deps.OfferedBearer, session: deps.DB, config: deps.Config
) -> TicketOut:
    """The link as its ticket opens it, to resume a download without taking another."""
    expires, view = service.by_ticket(session, link_id, ticket, now=config.clock())
    return TicketOut(ticket=None, expires_at=expires, transfer=_public(view))


@public.get(
    "/{link_id}/files/{file_id}",
    response_class=StreamingResponse,
    responses=DOWNLOAD_RESPONSES,
)
def download(
    link_id: str,
    file_id: str,
    ticket: deps.OfferedBearer,
    session: deps.DB,
    config: deps.Config,
    blobs: deps.Blobs,
    range_: RangeHeader = None,
    if_range: IfRangeHeader = None,
) -> Response:
    """A file's age ciphertext, with the link's ticket: as a transfer's file is served."""
    now = config.clock()
    key = service.file_by_ticket(session, link_id, file_id, ticket, now=now)
    response = blob_response(blobs, key, range_, if_range)
    if recorded(session, response, None, link_id, file_id, now=now):
        session.commit()
    return response
