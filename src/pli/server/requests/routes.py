"""File requests: made, sealed, listed and closed by their owner; read and answered by anyone
holding the URL, without an account.

An answer's files are uploaded with the resumable-upload routes, with the guest token the
answer was made with (`Authorization: Bearer pli_guest_…`), then sealed here.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from pli.errors import TooLargeError, UsageError
from pli.server import deps
from pli.server.config import MAX_FILE_SIZE_CEILING
from pli.server.requests import service
from pli.server.transfers import service as transfers
from pli.server.transfers.routes import STRICT, FileOut, SealRequest, decode_manifest
from pli.store import models

router = APIRouter(prefix="/api/v1/requests", tags=["requests"])
# Reading a request and reserving room are rate-limited per client address; sealing an answer
# (like uploading its files) needs the answer's guest token, and is not.
public = APIRouter(prefix="/api/v1/public", tags=["public"])
_LIMITED = [Depends(deps.public_limit)]
_SEALED_TEXT = (service.MAX_SEALED + 2) // 3 * 4  # base64 of MAX_SEALED bytes


class CreateFileRequest(BaseModel):
    model_config = STRICT

    expires_in: str | None = Field(default=None, max_length=16, examples=["7d"])
    max_files: int = Field(default=10, ge=1, le=service.MAX_FILES)
    max_bytes: int | None = Field(
        default=None, ge=1, le=service.MAX_BYTES, description="null: the server's file size limit"
    )


class SealFileRequest(BaseModel):
    model_config = STRICT

    # Bounded by the service (400), not here: the body limit keeps them small enough to look at.
    document: str = Field(description="base64 of the sealed document, 64 KiB at most")
    sealed_key: str = Field(description="base64 of the sealed key, 64 KiB at most")
    sender_token: str = Field(
        description="what senders will show (`Authorization: Bearer`) to read and answer the "
        "request; the server keeps its SHA-256",
        max_length=service.MAX_SENDER_TOKEN,
    )


class RequestOut(BaseModel):
    id: str
    url: str = Field(description="the request's link without its secret")
    state: str = Field(description="draft, open, closed, expired or full")
    created_at: datetime
    expires_at: datetime
    max_files: int
    max_bytes: int
    files_used: int
    bytes_used: int
    document: str | None = Field(description="base64 of the sealed document")
    sealed_key: str | None = Field(description="base64 of the sealed key")


class RequestListing(BaseModel):
    items: list[RequestOut] = Field(description="newest first")


class OpenRequestOut(BaseModel):
    id: str
    document: str = Field(description="base64 of the sealed document")
    expires_at: datetime
    files_left: int
    bytes_left: int


class AnswerRequest(BaseModel):
    model_config = STRICT

    files: list[Annotated[int, Field(ge=1, le=MAX_FILE_SIZE_CEILING)]] = Field(
        min_length=1,
        max_length=service.MAX_FILES,
        description="the size of each file's ciphertext, in bytes",
    )


class AnswerTransferOut(BaseModel):
    """An answer as its sender sees it: nothing of the requester."""

    id: str
    state: str
    created_at: datetime
    expires_at: datetime
    files: list[FileOut]


class AnswerOut(BaseModel):
    token: str = Field(description="uploads and seals this answer; shown once")
    transfer: AnswerTransferOut


def _answer_out(view: transfers.TransferView) -> AnswerTransferOut:
    t = view.transfer
    return AnswerTransferOut(
        id=t.id,
        state=t.state,
        created_at=t.created_at,
        expires_at=t.expires_at,
        files=[FileOut(id=f.id, size=f.size) for f in view.files],
    )


def _b64(data: bytes | None) -> str | None:
    return base64.b64encode(data).decode("ascii") if data is not None else None


def _unb64(text: str, what: str) -> bytes:
    if len(text) > _SEALED_TEXT:
        raise UsageError(f"the {what} is larger than {service.MAX_SEALED} bytes")
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or a str that is not ASCII at all
        raise UsageError(f"the {what} must be base64") from exc


def _out(request: models.FileRequest, base: str, now: datetime) -> RequestOut:
    return RequestOut(
        id=request.id,
        url=f"{base}/r/{request.id}",
        state=service.state_of(request, now),
        created_at=request.created_at,
        expires_at=request.expires_at,
        max_files=request.max_files,
        max_bytes=request.max_bytes,
        files_used=request.files_used,
        bytes_used=request.bytes_used,
        document=_b64(request.document),
        sealed_key=_b64(request.sealed_key),
    )


@router.post("", status_code=201)
def create(
    body: CreateFileRequest,
    user: deps.Receiver,
    session: deps.DB,
    config: deps.Config,
    base: deps.PublicBase,
    rules: deps.Rules,
) -> RequestOut:
    """A draft request: seal it with its document and key to open it."""
    rules.check_requests()
    expires_in = rules.expiry(body.expires_in)
    now = config.clock()
    made = service.create(
        session,
        user,
        expires_in=expires_in,
        max_files=body.max_files,
        max_bytes=body.max_bytes or rules.max_transfer_size or rules.max_file_size,
        now=now,
        max_expiry=rules.max_expiry,
    )
    return _out(made, base, now)


@router.post("/{request_id}/seal")
def seal(
    request_id: str,
    body: SealFileRequest,
    user: deps.Receiver,
    session: deps.DB,
    config: deps.Config,
    base: deps.PublicBase,
) -> RequestOut:
    sealed = service.Sealed(
        _unb64(body.document, "document"), _unb64(body.sealed_key, "sealed key"), body.sender_token
    )
    now = config.clock()
    return _out(service.seal(session, user, request_id, sealed, now=now), base, now)


@router.get("")
def listing(
    user: deps.Receiver,
    session: deps.DB,
    config: deps.Config,
    base: deps.PublicBase,
    limit: int = Query(default=100, ge=1, le=500),
) -> RequestListing:
    now = config.clock()
    found = service.listing(session, user, limit=limit)
    return RequestListing(items=[_out(r, base, now) for r in found])


@router.get("/{request_id}")
def show(
    request_id: str,
    user: deps.Receiver,
    session: deps.DB,
    config: deps.Config,
    base: deps.PublicBase,
) -> RequestOut:
    return _out(service.own(session, user, request_id), base, config.clock())


@router.post("/{request_id}/close")
def close(
    request_id: str,
    user: deps.Receiver,
    session: deps.DB,
    config: deps.Config,
    base: deps.PublicBase,
) -> RequestOut:
    """Accept no more answers; those received stay in the inbox."""
    now = config.clock()
    return _out(service.close(session, user, request_id, now=now), base, now)


@public.get("/requests/{request_id}", dependencies=_LIMITED)
def show_open(
    request_id: str, sender: deps.OfferedBearer, session: deps.DB, config: deps.Config
) -> OpenRequestOut:
    """A request as anyone answering it reads it, while it accepts answers, with the sender
    token its URL gives (`Authorization: Bearer`)."""
    request = service.open_request(session, request_id, sender, now=config.clock())
    return OpenRequestOut(
        id=request.id,
        document=_b64(request.document) or "",
        expires_at=request.expires_at,
        files_left=request.max_files - request.files_used,
        bytes_left=request.max_bytes - request.bytes_used,
    )


@public.post("/requests/{request_id}/answers", status_code=201, dependencies=_LIMITED)
def answer(
    request_id: str,
    body: AnswerRequest,
    sender: deps.OfferedBearer,
    session: deps.DB,
    config: deps.Config,
    rules: deps.Rules,
) -> AnswerOut:
    """Reserve room for files of these sizes, with the request's sender token: the answer's
    transfer, and the guest token that uploads its files and seals it."""
    rules.check_requests()
    for size in body.files:
        rules.check_file_size(size)
    if rules.max_transfer_size is not None and sum(body.files) > rules.max_transfer_size:
        raise TooLargeError("these files together are larger than this server accepts at once")
    token, view = service.answer(
        session,
        request_id,
        sender,
        body.files,
        now=config.clock(),
        lifetime=rules.default_expiry,
        max_file_size=rules.max_file_size,
    )
    return AnswerOut(token=token, transfer=_answer_out(view))


@public.post("/answers/{answer_id}/seal")
def seal_answer(
    answer_id: str, body: SealRequest, guest: deps.GuestActor, session: deps.DB, config: deps.Config
) -> AnswerTransferOut:
    """Seal an answer once every file is uploaded: it reaches the requester's inbox, and its
    guest token opens nothing any more."""
    manifest = decode_manifest(body.manifest)
    view = transfers.seal(session, guest, answer_id, manifest, now=config.clock(), settings=config)
    return _answer_out(view)
