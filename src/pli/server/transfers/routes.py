"""Create, upload, seal, list, download and revoke transfers."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.errors import UsageError
from pli.server import alerts, deps, metrics, problems
from pli.server.transfers import ranges, service
from pli.store import models
from pli.store.blobs import BlobStore

router = APIRouter(prefix="/api/v1/transfers", tags=["transfers"])
# For bodies taken with the JSON types they declare: no true for 1, no "2" for 2.
STRICT = ConfigDict(strict=True)


class GroupRecipients(BaseModel):
    name: str = Field(max_length=140, examples=["ars-idf/veille"])
    members: list[str] = Field(
        max_length=service.MAX_RECIPIENTS,
        description="the members of the group the sender encrypted to",
    )


class CreateRequest(BaseModel):
    recipients: list[str] = Field(
        default_factory=list,
        max_length=service.MAX_RECIPIENTS,
        description="accounts named directly (may be empty when groups are given)",
    )
    groups: list[GroupRecipients] = Field(default_factory=list, max_length=20)
    files: int = Field(ge=1, le=service.MAX_FILES)
    expires_in: str | None = Field(default=None, max_length=16, examples=["7d"])


class FileOut(BaseModel):
    id: str
    size: int | None


class TransferOut(BaseModel):
    id: str
    kind: str = Field(description="direct, link (a share link's) or answer (to a file request)")
    state: str
    sender: str = Field(description='the sender\'s address; "" for an answer (no account)')
    sender_service: bool = Field(
        default=False, description="sent by a service account (an unattended job)"
    )
    recipients: list[str]
    created_at: datetime
    expires_at: datetime
    files: list[FileOut]
    manifest: str | None = Field(description="base64 of the age-encrypted, signed manifest")
    request: str | None = Field(description="for an answer, the file request it answers")


class ListingOut(BaseModel):
    items: list[TransferOut] = Field(description="newest first")
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null when this page is the last"
    )


class SealRequest(BaseModel):
    manifest: str = Field(max_length=(service.MAX_MANIFEST * 4) // 3 + 4)


def transfer_out(view: service.TransferView) -> TransferOut:
    t = view.transfer
    return TransferOut(
        id=t.id,
        kind=t.kind,
        state=t.state,
        sender=view.sender,
        sender_service=view.sender_service,
        recipients=view.recipients,
        created_at=t.created_at,
        expires_at=t.expires_at,
        files=[FileOut(id=f.id, size=f.size) for f in view.files],
        manifest=base64.b64encode(t.manifest).decode("ascii") if t.manifest else None,
        request=view.request,
    )


def decode_manifest(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:  # binascii.Error, or a str that is not ASCII at all
        raise UsageError("the manifest must be base64") from exc


@router.post("", status_code=201)
def create(
    body: CreateRequest, user: deps.Sender, session: deps.DB, config: deps.Config, rules: deps.Rules
) -> TransferOut:
    expires_in = rules.expiry(body.expires_in)
    view = service.create(
        session,
        user,
        body.recipients,
        body.files,
        expires_in,
        now=config.clock(),
        max_expiry=rules.max_expiry,
        groups={g.name: g.members for g in body.groups},
    )
    return transfer_out(view)


@router.get("")
def listing(
    caller: deps.Caller,
    session: deps.DB,
    config: deps.Config,
    box: Literal["inbox", "outbox"] = "inbox",
    limit: int = Query(default=50, ge=1, le=500),
    cursor: str | None = Query(
        default=None, description="the `next_cursor` of the previous page, unchanged"
    ),
) -> ListingOut:
    user = deps.require(caller, "send" if box == "outbox" else "receive")
    page = service.listing(session, user, box, now=config.clock(), limit=limit, cursor=cursor)
    return ListingOut(items=[transfer_out(v) for v in page.views], next_cursor=page.next_cursor)


@router.get("/{transfer_id}")
def show(
    transfer_id: str, user: deps.Receiver, session: deps.DB, config: deps.Config
) -> TransferOut:
    return transfer_out(service.get_visible(session, user, transfer_id, now=config.clock()))


@router.post("/{transfer_id}/seal")
def seal(
    transfer_id: str, body: SealRequest, user: deps.Sender, session: deps.DB, config: deps.Config
) -> TransferOut:
    manifest = decode_manifest(body.manifest)
    view = service.seal(session, user, transfer_id, manifest, now=config.clock(), settings=config)
    return transfer_out(view)


_BLOB = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_STRING = {"schema": {"type": "string"}}
DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The whole blob: the file's age ciphertext",
        "content": _BLOB,
        "headers": {"ETag": _STRING, "Accept-Ranges": _STRING},
    },
    206: {
        "description": "The one range asked for (`Range`), when `If-Range` is absent or matches",
        "content": _BLOB,
        "headers": {"ETag": _STRING, "Accept-Ranges": _STRING, "Content-Range": _STRING},
    },
    416: {
        "description": "The range lies past the end of the blob",
        "content": {problems.PROBLEM: {"schema": problems.Problem.model_json_schema()}},
        "headers": {"Content-Range": {**_STRING, "description": "`bytes */SIZE`"}},
    },
}
RangeHeader = Annotated[
    str | None, Header(alias="range", description="one range: `bytes=FIRST-[LAST]`, `bytes=-N`")
]
IfRangeHeader = Annotated[
    str | None, Header(description="the `ETag` of an earlier answer: resume only that blob")
]


@router.get(
    "/{transfer_id}/files/{file_id}",
    response_class=StreamingResponse,
    responses=DOWNLOAD_RESPONSES,
)
def download(
    transfer_id: str,
    file_id: str,
    user: deps.Receiver,
    session: deps.DB,
    config: deps.Config,
    blobs: deps.Blobs,
    rules: deps.Rules,
    range_: RangeHeader = None,
    if_range: IfRangeHeader = None,
) -> Response:
    """The file's age ciphertext: whole, or one byte range (`Range`; with `If-Range` set to the
    `ETag` of an earlier answer, only if the blob is still that one). Several ranges, or a
    malformed `Range`, are answered with the whole blob. Each answer is in the audit log."""
    now = config.clock()
    alerts.check_downloads(user)
    key = service.downloadable(session, user, transfer_id, file_id, now=now)
    response = blob_response(blobs, key, range_, if_range)
    if recorded(session, response, user, transfer_id, file_id, now=now):
        alerts.after(session, user, Event.TRANSFER_DOWNLOADED, rules, now=now)
        session.commit()
    return response


def recorded(
    session: Session,
    response: Response,
    user: models.User | None,
    transfer_id: str,
    file_id: str,
    *,
    now: datetime,
) -> bool:
    """Record the download a blob response is about to serve (which bytes, to whom: None for
    a share link's ticket), flushed, not committed; False for a refusal, which records nothing."""
    if response.status_code not in (200, 206):
        return False
    sent = int(response.headers.get("content-length", "0"))
    content_range = response.headers.get("content-range", "")
    first = int(content_range.split(" ")[1].split("-")[0]) if content_range else 0
    service.record_download(session, user, transfer_id, file_id, now=now, first=first, sent=sent)
    return True


class FailureReport(BaseModel):
    reason: Literal["decrypt", "signature", "digest", "manifest"] = Field(
        description="what failed on the client: decryption, the sender's signature, a file's "
        "ciphertext digest, or the manifest"
    )


@router.post("/{transfer_id}/receipt", status_code=204)
def receipt(
    transfer_id: str,
    user: deps.Receiver,
    session: deps.DB,
    config: deps.Config,
    blobs: deps.Blobs,
    rules: deps.Rules,
) -> None:
    """Confirm, as a recipient, that every file arrived and authenticated: the sender gets a
    receipt, and under the delete-after-download policy the files are purged once every
    recipient has confirmed."""
    now = config.clock()
    if service.receive(session, user, transfer_id, now=now, settings=config) and (
        rules.delete_after_download
    ):
        transfer = session.get_one(models.Transfer, transfer_id)
        if transfer.state == "sealed":
            service.end(
                session,
                blobs,
                transfer,
                "received",
                now=now,
                actor=audit.SERVER,
                reason="received",
            )


@router.post("/{transfer_id}/failures", status_code=204)
def failure(
    transfer_id: str,
    body: FailureReport,
    user: deps.Receiver,
    session: deps.DB,
    config: deps.Config,
    rules: deps.Rules,
) -> None:
    """Report, as a recipient, that a download failed to decrypt or authenticate: recorded,
    and counted toward the account's alerts."""
    now = config.clock()
    service.report_failure(session, user, transfer_id, body.reason, now=now)
    alerts.after(session, user, Event.TRANSFER_DECRYPT_FAILED, rules, now=now)
    session.commit()


def blob_response(blobs: BlobStore, key: str, range_: str | None, if_range: str | None) -> Response:
    """A stored blob, whole or the one range asked for; 416 for a range past its end."""
    size, tag = blobs.size(key), ranges.etag(key)
    try:
        part = ranges.requested_range(range_, size, if_range=if_range, current_etag=tag)
    except ranges.UnsatisfiableRangeError:
        refusal = problems.problem(
            416, "Range Not Satisfiable", "the range asked for lies past the end of the file"
        )
        refusal.headers["content-range"] = f"bytes */{size}"
        return refusal
    headers = {"accept-ranges": "bytes", "etag": tag}
    if part is None:
        headers["content-length"] = str(size)
        body, status = blobs.read(key), 200
    else:
        headers["content-length"] = str(part.stop - part.start)
        headers["content-range"] = part.content_range(size)
        body, status = blobs.read(key, part.start, part.stop), 206
    # The store reads 1 MiB at a time: a quarter of the server's CPU per GiB of a FileResponse.
    return StreamingResponse(
        metrics.counted(body),
        status_code=status,
        media_type="application/octet-stream",
        headers=headers,
    )


@router.delete("/{transfer_id}", status_code=204)
def revoke(
    transfer_id: str, user: deps.Sender, session: deps.DB, config: deps.Config, blobs: deps.Blobs
) -> None:
    service.revoke(session, blobs, user, transfer_id, now=config.clock())
