"""Resumable uploads over tus 1.0 (https://tus.io/protocols/resumable-upload), with its
creation, termination, checksum (sha256) and expiration extensions.

    POST   /api/v1/uploads        Upload-Length, Upload-Metadata: transfer <b64>,file <b64>
    HEAD   /api/v1/uploads/{id}   -> Upload-Offset
    PATCH  /api/v1/uploads/{id}   Upload-Offset, [Upload-Checksum: sha256 <b64>], the bytes
    DELETE /api/v1/uploads/{id}

Each PATCH is one part: it counts whole or not at all, so after any interruption the client
asks the offset (HEAD) and sends again from there. Every part but the last is at least
MIN_PART bytes. When the last byte is in, the parts become the file's blob.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hmac
import time
from email.utils import format_datetime

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from pli.errors import ChecksumMismatchError, ProtocolError, UsageError
from pli.server import deps, metrics
from pli.server.config import MAX_FILE_SIZE_CEILING, Settings
from pli.server.uploads import service
from pli.store.blobs import BlobStore, PartReceipt, PartWriter

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"])
TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,termination,checksum,expiration"
BATCH = 1 << 20
_RENEW_EVERY = service.LEASE.total_seconds() / 3


def _tus(**headers: str) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store", **headers}


def _check_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise ProtocolError(f"this server speaks tus {TUS_VERSION}: send Tus-Resumable")


def _whole_number(request: Request, name: str) -> int:
    text = request.headers.get(name, "")
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        raise UsageError(f"the {name} header must be a whole number of bytes")
    return int(text)


def _metadata(text: str) -> dict[str, str]:
    """tus Upload-Metadata: comma-separated `key base64(value)` pairs."""
    found: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = pair.partition(" ")
        try:
            found[key] = base64.b64decode(value, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise UsageError(f"Upload-Metadata: the value of {key!r} is not base64") from exc
    return found


def _expires(state: service.UploadState) -> str:
    return format_datetime(state.expires_at, usegmt=True)


@router.options("", status_code=204)
def discover(rules: deps.Rules) -> Response:
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": EXTENSIONS,
        "Tus-Checksum-Algorithm": "sha256",
        "Tus-Max-Size": str(rules.max_file_size),
    }
    return Response(status_code=204, headers=headers)


@router.post("", status_code=201)
def create(
    request: Request,
    actor: deps.Uploader,
    session: deps.DB,
    config: deps.Config,
    blobs: deps.Blobs,
    rules: deps.Rules,
) -> Response:
    """Start the upload of one file of one of your transfers (still being uploaded), or, with
    a file request's guest token (`Bearer pli_guest_…`), of the answer it was given for."""
    _check_version(request)
    length = _whole_number(request, "upload-length")
    meta = _metadata(request.headers.get("upload-metadata", ""))
    if "transfer" not in meta or "file" not in meta:
        raise UsageError("Upload-Metadata must name the transfer and the file")
    state = service.create(
        session,
        blobs,
        actor,
        meta["transfer"],
        meta["file"],
        length,
        now=config.clock(),
        grace=config.upload_grace,
        rules=rules,
    )
    headers = _tus(
        Location=f"/api/v1/uploads/{state.id}", **{"Upload-Offset": "0"}, **_expiry(state)
    )
    return Response(status_code=201, headers=headers)


def _expiry(state: service.UploadState) -> dict[str, str]:
    return {"Upload-Expires": _expires(state)}


@router.head("/{upload_id}")
def offset(
    upload_id: str, request: Request, actor: deps.Uploader, session: deps.DB, config: deps.Config
) -> Response:
    """How many bytes of the upload the server holds."""
    _check_version(request)
    state = service.status(session, actor, upload_id, now=config.clock())
    headers = _tus(
        **{"Upload-Offset": str(state.offset), "Upload-Length": str(state.length)},
        **_expiry(state),
    )
    return Response(status_code=200, headers=headers)


@router.patch("/{upload_id}", status_code=204, max_body_size=MAX_FILE_SIZE_CEILING)
async def append(
    upload_id: str,
    request: Request,
    actor: deps.Uploader,
    session: deps.DB,
    config: deps.Config,
    blobs: deps.Blobs,
) -> Response:
    """Append bytes at Upload-Offset. Without Upload-Checksum, a long request is made durable
    every 64 MiB and what arrived before a cut counts; with one, it counts whole or not at all."""
    _check_version(request)
    if request.headers.get("content-type") != "application/offset+octet-stream":
        raise ProtocolError("send the bytes as application/offset+octet-stream", status=415)
    at = _whole_number(request, "upload-offset")
    size = _whole_number(request, "content-length")
    expected = _checksum(request.headers.get("upload-checksum"))
    await run_in_threadpool(session.commit)  # no connection is held while the bytes arrive
    state = await run_in_threadpool(service.status, session, actor, upload_id, now=config.clock())
    if not (state.done and size == 0 and at == state.length):  # else: an interrupted finish
        service.check_part(state, at, size, checked=expected is not None, min_part=blobs.min_part)
        await run_in_threadpool(service.lease, session, state, now=config.clock())
        try:
            state = await _Receiver(session, blobs, config, state, expected).run(request, size)
        except ClientDisconnect as exc:
            raise UsageError("the connection closed before the end of the request") from exc
    if state.done:
        await run_in_threadpool(service.finish, session, blobs, state, now=config.clock())
    headers = _tus(**{"Upload-Offset": str(state.offset)}, **_expiry(state))
    return Response(status_code=204, headers=headers)


def _checksum(header: str | None) -> bytes | None:
    if header is None:
        return None
    algorithm, _, value = header.strip().partition(" ")
    if algorithm.lower() != "sha256":
        raise UsageError("Upload-Checksum: this server checks sha256 only")
    try:
        digest = base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise UsageError("Upload-Checksum: the digest is not base64") from exc
    if len(digest) != 32:
        raise UsageError("Upload-Checksum: a sha256 digest is 32 bytes")
    return digest


class _Receiver:
    """Writes one PATCH body into the store in parts, off the event loop, in large batches."""

    def __init__(
        self,
        session: Session,
        blobs: BlobStore,
        config: Settings,
        state: service.UploadState,
        expected: bytes | None,
    ) -> None:
        self.session, self.blobs, self.config = session, blobs, config
        self.state, self.expected = state, expected
        self.target = service.MAX_CHECKED_PART if expected else service.PART_TARGET
        self.writer: PartWriter | None = None
        self.renewed = time.monotonic()

    async def run(self, request: Request, size: int) -> service.UploadState:
        try:
            await self._receive(request, size)
            await self._commit(final=True)
        except BaseException:
            await self._salvage()
            raise
        return self.state

    async def _receive(self, request: Request, size: int) -> None:
        # The body's pieces are kept as they come and written together once per batch, with
        # one system call and no copy to join them.
        received, pending, held = 0, list[bytes](), 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > size:
                raise UsageError("the request is longer than its Content-Length")
            pending.append(chunk)
            held += len(chunk)
            if held >= BATCH:
                await self._write(pending)
                pending, held = [], 0
        if pending:
            await self._write(pending)
        if received != size:
            raise UsageError("the request ended before its Content-Length")

    async def _write(self, batch: list[bytes]) -> None:
        if self.writer is None:
            number = len(self.state.parts) + 1
            self.writer = await run_in_threadpool(
                functools.partial(
                    self.blobs.part,
                    self.state.token,
                    number,
                    self.state.offset,
                    checksum=self.expected is not None,
                )
            )
        await run_in_threadpool(self.writer.write, *batch)
        if self.writer.size >= self.target:
            await self._commit(final=False)
        elif time.monotonic() - self.renewed > _RENEW_EVERY:
            await run_in_threadpool(
                service.renew, self.session, self.state.id, now=self.config.clock()
            )
            self.renewed = time.monotonic()

    async def _commit(self, *, final: bool) -> None:
        writer, self.writer = self.writer, None
        if writer is None:
            await run_in_threadpool(service.release, self.session, self.state.id)
            return
        try:
            receipt = await run_in_threadpool(writer.commit)
        except BaseException:
            await run_in_threadpool(writer.abort)
            raise
        if final:
            _verify(self.expected, receipt)
        await self._record(receipt, keep_lease=not final)
        self.renewed = time.monotonic()

    async def _record(self, receipt: PartReceipt, *, keep_lease: bool) -> None:
        self.state = await run_in_threadpool(
            functools.partial(
                service.record,
                self.session,
                self.state,
                receipt,
                now=self.config.clock(),
                grace=self.config.upload_grace,
                keep_lease=keep_lease,
            )
        )
        metrics.received(receipt.size)  # only once the part counts towards the upload

    async def _salvage(self) -> None:
        """After a cut: keep what arrived, where the protocol allows it; free the upload."""
        writer, self.writer = self.writer, None
        if writer is not None and self.expected is None and writer.size >= self.blobs.min_part:
            with contextlib.suppress(Exception):
                await self._record(await run_in_threadpool(writer.commit), keep_lease=False)
                return
        if writer is not None:
            await run_in_threadpool(writer.abort)
        await run_in_threadpool(service.release, self.session, self.state.id)


def _verify(expected: bytes | None, receipt: PartReceipt) -> None:
    if expected is not None and not hmac.compare_digest(expected, bytes.fromhex(receipt.sha256)):
        raise ChecksumMismatchError("the bytes do not match the request's Upload-Checksum")


@router.delete("/{upload_id}", status_code=204)
def terminate(
    upload_id: str, actor: deps.Uploader, session: deps.DB, config: deps.Config, blobs: deps.Blobs
) -> Response:
    """Abandon an unfinished upload; its parts are deleted."""
    service.terminate(session, blobs, actor, upload_id, now=config.clock())
    return Response(status_code=204, headers=_tus())
