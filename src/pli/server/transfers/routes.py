"""Create, upload, seal, list, download and revoke transfers."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from pli.durations import parse_duration
from pli.errors import TooLargeError, UsageError
from pli.server import deps
from pli.server.config import MAX_FILE_SIZE_CEILING
from pli.server.transfers import service
from pli.store.blobs import BlobWriter

router = APIRouter(prefix="/api/v1/transfers", tags=["transfers"])
UPLOAD_BATCH = 1 << 20


class CreateRequest(BaseModel):
    recipients: list[str] = Field(min_length=1, max_length=service.MAX_RECIPIENTS)
    files: int = Field(ge=1, le=service.MAX_FILES)
    expires_in: str | None = Field(default=None, max_length=16, examples=["7d"])


class FileOut(BaseModel):
    id: str
    size: int | None
    sha256: str | None


class TransferOut(BaseModel):
    id: str
    state: str
    sender: str
    recipients: list[str]
    created_at: datetime
    expires_at: datetime
    files: list[FileOut]
    manifest: str | None = Field(description="base64 of the age-encrypted, signed manifest")


class SealRequest(BaseModel):
    manifest: str = Field(max_length=(service.MAX_MANIFEST * 4) // 3 + 4)


def _out(view: service.TransferView) -> TransferOut:
    t = view.transfer
    return TransferOut(
        id=t.id,
        state=t.state,
        sender=view.sender,
        recipients=view.recipients,
        created_at=t.created_at,
        expires_at=t.expires_at,
        files=[FileOut(id=f.id, size=f.size, sha256=f.sha256) for f in view.files],
        manifest=base64.b64encode(t.manifest).decode("ascii") if t.manifest else None,
    )


@router.post("", status_code=201)
def create(
    body: CreateRequest, user: deps.Sender, session: deps.DB, config: deps.Config
) -> TransferOut:
    expires_in = parse_duration(body.expires_in) if body.expires_in else config.default_expiry
    view = service.create(
        session,
        user,
        body.recipients,
        body.files,
        expires_in,
        now=config.clock(),
        max_expiry=config.max_expiry,
    )
    return _out(view)


@router.get("")
def listing(
    caller: deps.Caller,
    session: deps.DB,
    config: deps.Config,
    box: Literal["inbox", "outbox"] = "inbox",
    limit: int = Query(default=50, ge=1, le=500),
) -> list[TransferOut]:
    user = deps.require(caller, "send" if box == "outbox" else "receive")
    return [_out(v) for v in service.listing(session, user, box, now=config.clock(), limit=limit)]


@router.get("/{transfer_id}")
def show(
    transfer_id: str, user: deps.Receiver, session: deps.DB, config: deps.Config
) -> TransferOut:
    return _out(service.get_visible(session, user, transfer_id, now=config.clock()))


# The framework's body limit (PLI's 8 MiB for JSON) is lifted to the ceiling of any configured
# file size here; the configured `max_file_size` itself is enforced below, while streaming.
@router.put("/{transfer_id}/files/{file_id}", max_body_size=MAX_FILE_SIZE_CEILING)
async def upload(
    transfer_id: str,
    file_id: str,
    request: Request,
    user: deps.Sender,
    session: deps.DB,
    config: deps.Config,
    blobs: deps.Blobs,
) -> FileOut:
    row = await run_in_threadpool(
        service.upload_target, session, user, transfer_id, file_id, now=config.clock()
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > config.max_file_size:
        raise TooLargeError("the file is larger than this server accepts")
    writer = await run_in_threadpool(blobs.writer)
    try:
        await _receive(request, writer, config.max_file_size)
        key, size, digest = await run_in_threadpool(writer.commit)
    except BaseException:
        writer.abort()
        raise
    await run_in_threadpool(service.attach_blob, session, blobs, row, key, size, digest)
    return FileOut(id=row.id, size=size, sha256=digest)


async def _receive(request: Request, writer: BlobWriter, limit: int) -> None:
    batch = bytearray()
    async for chunk in request.stream():
        batch += chunk
        if writer.size + len(batch) > limit:  # checked before anything over the limit is written
            raise TooLargeError("the file is larger than this server accepts")
        if len(batch) >= UPLOAD_BATCH:
            # One executor job per large batch: write and hash together, off the event loop.
            await run_in_threadpool(writer.write, batch)
            batch = bytearray()
    if batch:
        await run_in_threadpool(writer.write, batch)


@router.post("/{transfer_id}/seal")
def seal(
    transfer_id: str, body: SealRequest, user: deps.Sender, session: deps.DB, config: deps.Config
) -> TransferOut:
    try:
        manifest = base64.b64decode(body.manifest, validate=True)
    except ValueError as exc:  # binascii.Error, or a str that is not ASCII at all
        raise UsageError("the manifest must be base64") from exc
    return _out(service.seal(session, user, transfer_id, manifest, now=config.clock()))


@router.get("/{transfer_id}/files/{file_id}", response_class=StreamingResponse)
def download(
    transfer_id: str,
    file_id: str,
    user: deps.Receiver,
    session: deps.DB,
    config: deps.Config,
    blobs: deps.Blobs,
) -> StreamingResponse:
    key = service.downloadable(session, user, transfer_id, file_id, now=config.clock())
    size = blobs.size(key)
    return StreamingResponse(
        blobs.read(key),
        media_type="application/octet-stream",
        headers={"content-length": str(size)},
    )


@router.delete("/{transfer_id}", status_code=204)
def revoke(
    transfer_id: str, user: deps.Sender, session: deps.DB, config: deps.Config, blobs: deps.Blobs
) -> None:
    service.revoke(session, blobs, user, transfer_id, now=config.clock())
