"""Exchanges with people who have no account: share links and file requests.

A link's URL carries, after `#`, the secret that opens it; a request's URL carries the key its
answers are encrypted to and the secret that vouches for them. No pli client ever sends that
part to a server: `split_url` cuts it off before any request is made. A request's senders show
the server only a token derived from its secret (`RequestFragment.sender_token`), which
proves they hold the URL. See docs/spec/links.md.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeGuard
from urllib.parse import urlsplit, urlunsplit

from pli.client.api import Api, check_url
from pli.client.download import RESUMABLE, Fetch, receive_all
from pli.client.upload import Digests, SentRecord, Uploader, encrypted_parts, send_file
from pli.crypto import age
from pli.crypto import links as lk
from pli.crypto import manifest as mf
from pli.crypto.bundle import fingerprint
from pli.durations import parse_time
from pli.errors import (
    DecryptError,
    GoneError,
    IntegrityError,
    NotFoundError,
    UsageError,
)

_ID = re.compile(r"[A-Za-z0-9_-]{16,64}")
TICKET_SUFFIX = ".ticket"


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


def split_url(url: str, kind: str, *, allow_http: bool = False) -> tuple[str, str, str]:
    """(server address, id, fragment) of `BASE/<kind>/<id>#<fragment>`."""
    what = "link" if kind == "l" else "request link"
    parts = urlsplit(url.strip())
    prefix, sep, ident = parts.path.rstrip("/").rpartition(f"/{kind}/")
    if not sep or not _ID.fullmatch(ident) or parts.query:
        raise UsageError(f"this is not a pli {what}: it should look like https://HOST/{kind}/ID#…")
    base = urlunsplit((parts.scheme, parts.netloc, prefix, "", ""))
    return check_url(base, allow_http=allow_http), ident, parts.fragment


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError) as exc:  # binascii.Error is a ValueError
        raise IntegrityError(f"the server sent a malformed {what}") from exc


# --- getting a link ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedLink:
    files: list[Path]
    sender: str  # what the sender's signed manifest says: their address, not verified here
    fingerprint: str  # of the key that signed it, to compare with the sender's
    message: str


_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def _private(info: os.stat_result) -> bool:
    """A regular file of this user's, with one link and no group or other permission."""
    foreign = hasattr(os, "getuid") and info.st_uid != os.getuid()
    loose = info.st_mode & 0o077 or info.st_nlink != 1
    return stat.S_ISREG(info.st_mode) and not foreign and not loose


class TicketFile:
    """The download ticket of a link being fetched, kept beside the partial files so that an
    interrupted download resumes on the same ticket instead of using another.

    Written fresh each time: whatever is at its name is unlinked (never followed) and a new
    file is created 0600 with O_EXCL and O_NOFOLLOW. Read without following a symbolic link,
    and only if it is a regular file of this user's, with no other link and no group or other
    permission; anything else at its name is refused with a UsageError naming it (removing
    it lets the command go on), so that a planted or exposed ticket is never used."""

    def __init__(self, out_dir: Path, link_id: str) -> None:
        digest = hashlib.sha256(b"pli link ticket\x00" + link_id.encode()).hexdigest()
        self.path = out_dir / f".pli-{digest[:32]}{TICKET_SUFFIX}"

    def read(self) -> str | None:
        flags = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._in_the_way(exc.strerror) from exc
        with os.fdopen(fd, "rb") as handle:
            if not _private(os.fstat(fd)):
                raise self._in_the_way("not a private file of yours")
            text = handle.read(256).decode("ascii", "replace").strip()
        return text if text.startswith("pli_ticket_") else None

    def write(self, ticket: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
        try:
            self.path.unlink(missing_ok=True)  # the entry itself, never what it points to
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise UsageError(f"cannot write {self.path}: {exc.strerror}") from exc
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, 0o600)
            handle.write(ticket.encode("ascii"))

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)

    def _in_the_way(self, why: str | None) -> UsageError:
        return UsageError(
            f"cannot use the download ticket {self.path} ({why}): remove it and run the "
            "command again"
        )


def get_link(
    url: str,
    out_dir: Path,
    passphrase: Callable[[], str],
    *,
    progress: Progress,
    notices: list[str],
    allow_http: bool = False,
) -> ReceivedLink:
    """Download, verify and decrypt what a link holds; no account or state needed. A wrong
    or altered secret is found out before anything is asked of the server."""
    base, link_id, text = split_url(url, "l", allow_http=allow_http)
    fragment = lk.parse_link_fragment(text)
    identity = fragment.open(passphrase() if fragment.needs_passphrase else None)
    _output_directory(out_dir)
    tickets = TicketFile(out_dir, link_id)
    ticket, answer = _ticket(base, link_id, tickets)
    try:
        manifest = _link_manifest(answer["transfer"], link_id, identity)
        saved = _fetch_link(base, ticket, link_id, manifest, out_dir, identity, progress, notices)
    except RESUMABLE:
        raise  # the ticket stays with the partial files, for the same command to resume
    except BaseException:
        tickets.delete()
        raise
    tickets.delete()
    sender = manifest.sender
    return ReceivedLink(
        saved, sender["email"], fingerprint(sender["age"], sender["ed25519"]), manifest.message
    )


def _output_directory(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        why = "it is not a directory" if isinstance(exc, FileExistsError) else exc.strerror
        raise UsageError(f"cannot save into {out_dir}: {why}") from exc


def _fetch_link(
    base: str,
    ticket: str,
    link_id: str,
    manifest: mf.Manifest,
    out_dir: Path,
    identity: age.X25519Identity,
    progress: Progress,
    notices: list[str],
) -> list[Path]:
    holder = Api(base, ticket)
    try:
        files = f"/api/v1/public/links/{link_id}/files"
        fetch = Fetch(holder, files, link_id, out_dir, [identity])
        return receive_all(fetch, manifest.files, progress, notices)
    finally:
        holder.close()


def _ticket(base: str, link_id: str, tickets: TicketFile) -> tuple[str, dict[str, Any]]:
    """The ticket of an interrupted download if it still holds, else a new one (which uses
    one of the link's downloads)."""
    kept = tickets.read()
    if kept is not None:
        try:
            answer = _call(base, kept, "GET", f"/api/v1/public/links/{link_id}")
            return kept, _checked_ticket_answer(answer, link_id)
        except NotFoundError:
            tickets.delete()
    answer = _call(base, None, "POST", f"/api/v1/public/links/{link_id}/tickets")
    ticket = answer.get("ticket") if isinstance(answer, dict) else None
    if not isinstance(ticket, str) or not ticket.startswith("pli_ticket_"):
        raise IntegrityError("the server sent a malformed download ticket")
    tickets.write(ticket)
    return ticket, _checked_ticket_answer(answer, link_id)


def _call(base: str, token: str | None, method: str, path: str, **kwargs: Any) -> Any:
    api = Api(base, token)
    try:
        return api.request(method, path, **kwargs)
    finally:
        api.close()


def _checked_ticket_answer(answer: Any, link_id: str) -> dict[str, Any]:
    if not isinstance(answer, dict) or not isinstance(answer.get("transfer"), dict):
        raise IntegrityError("the server sent a malformed link")
    if answer["transfer"].get("id") != link_id:
        raise IntegrityError("the server answered with another link (replayed?)")
    return answer


def listed_files(transfer: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(id, size) of each file the server lists for a transfer, to compare with the signed
    entries; a list that is not one of objects is refused."""
    files = transfer.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        raise IntegrityError("the server sent a malformed file list")
    return [(f.get("id"), f.get("size")) for f in files]


def _link_manifest(
    transfer: dict[str, Any], link_id: str, identity: age.X25519Identity
) -> mf.Manifest:
    sealed = _unb64(transfer.get("manifest"), "manifest")
    try:
        manifest, signed = mf.open_sealed(sealed, identity)
    except DecryptError as exc:
        raise IntegrityError(
            "this link's secret does not open it: the link is incomplete or was altered"
        ) from exc
    if manifest.transfer != link_id:
        raise IntegrityError("the manifest belongs to another link (replayed by the server?)")
    mf.verify_signed_by(signed, manifest.sender["ed25519"])
    if str(identity.recipient) not in [r["age"] for r in manifest.recipients]:
        raise IntegrityError("the manifest does not name this link as a recipient")
    if listed_files(transfer) != [(f.id, f.ciphertext_size) for f in manifest.files]:
        raise IntegrityError("the server's file list does not match the signed manifest")
    if parse_time(manifest.expires) <= datetime.now(UTC):
        raise GoneError(LINK_GONE)
    return manifest


LINK_GONE = "this link does not exist or is no longer available"


# --- answering a request ----------------------------------------------------------------------


@dataclass(frozen=True)
class SentAnswer:
    transfer: str
    requester: str  # as the requester's signed document says; not verified here
    fingerprint: str
    title: str


@dataclass(frozen=True)
class OpenRequest:
    """A request as its sender sees it before answering."""

    id: str
    document: lk.RequestDocument
    files_left: int
    bytes_left: int
    expires_at: str


_MALFORMED_REQUEST = "the server sent a malformed request"
_MALFORMED_RESERVATION = "the server sent a malformed reservation for the answer"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,256}")


def read_request(api: Api, request_id: str, fragment: lk.RequestFragment) -> OpenRequest:
    """The request as its senders see it; `api` shows the fragment's sender token."""
    answer = api.request("GET", f"/api/v1/public/requests/{request_id}")
    if not isinstance(answer, dict):
        raise IntegrityError(_MALFORMED_REQUEST)
    files_left, bytes_left = answer.get("files_left"), answer.get("bytes_left")
    expires = answer.get("expires_at")
    if not (_count(files_left) and _count(bytes_left) and isinstance(expires, str)):
        raise IntegrityError(_MALFORMED_REQUEST)
    sealed = _unb64(answer.get("document"), "request")
    document = lk.open_document(sealed, request_id, fragment)
    return OpenRequest(request_id, document, files_left, bytes_left, expires)


def _count(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_id(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _ID.fullmatch(value) is not None


@dataclass(frozen=True)
class _Reservation:
    """What the server reserved for an answer: its transfer, a slot per file, and the guest
    token that uploads them and seals the answer."""

    token: str
    transfer: str
    created: str
    slots: list[str]


def _reservation(created: Any, count: int) -> _Reservation:
    """The server's reservation, checked: a guest token, a transfer id and time, and one
    slot per file; else an IntegrityError."""
    transfer = created.get("transfer") if isinstance(created, dict) else None
    if not isinstance(transfer, dict):
        raise IntegrityError(_MALFORMED_RESERVATION)
    token, ident, made = created.get("token"), transfer.get("id"), transfer.get("created_at")
    slots = _slots(transfer.get("files"))
    if not (
        isinstance(token, str)
        and _TOKEN.fullmatch(token)
        and _is_id(ident)
        and isinstance(made, str)
        and slots is not None
        and len(slots) == count
    ):
        raise IntegrityError(_MALFORMED_RESERVATION)
    return _Reservation(token, ident, made, slots)


def _slots(files: Any) -> list[str] | None:
    """The file ids of a list of objects that all have one, else None."""
    if not isinstance(files, list) or not all(isinstance(f, dict) for f in files):
        return None
    ids = [f.get("id") for f in files]
    return ids if all(_is_id(i) for i in ids) else None


def answer_request(
    url: str,
    paths: Sequence[Path],
    *,
    name: str,
    message: str,
    progress: Progress,
    retry_seconds: float,
    allow_http: bool = False,
) -> SentAnswer:
    """Encrypt files to a request's key and upload them, with no account."""
    base, request_id, text = split_url(url, "r", allow_http=allow_http)
    fragment = lk.parse_request_fragment(text)
    files = [readable_file(p) for p in paths]
    if not files:
        raise UsageError("name at least one file to send")
    encryptors = [age.Encryptor.to_recipients([fragment.recipient]) for _ in files]
    request, reserved = _reserve(base, request_id, fragment, files, encryptors)
    guest = Api(base, reserved.token)
    try:
        entries = [
            _upload(guest, reserved.transfer, slot, path, enc, progress, retry_seconds)
            for slot, path, enc in zip(reserved.slots, files, encryptors, strict=True)
        ]
        answer = lk.Answer(request_id, reserved.transfer, name, message, entries, reserved.created)
        body = {"manifest": _b64(lk.seal_answer(fragment, answer))}
        guest.request("POST", f"/api/v1/public/answers/{reserved.transfer}/seal", json=body)
    finally:
        guest.close()
    doc = request.document
    return SentAnswer(reserved.transfer, doc.requester["email"], doc.fingerprint, doc.title)


_CHECK_THE_LINK = "if it should be open, the link may be incomplete or altered: ask for it again"


def _reserve(
    base: str,
    request_id: str,
    fragment: lk.RequestFragment,
    files: list[Path],
    encryptors: list[age.Encryptor],
) -> tuple[OpenRequest, _Reservation]:
    """Read the request and reserve room for the files, showing the fragment's sender token:
    the request's id alone opens neither."""
    sender = Api(base, fragment.sender_token)
    try:
        request = read_request(sender, request_id, fragment)
        sizes = [
            e.ciphertext_size(p.stat().st_size) for e, p in zip(encryptors, files, strict=True)
        ]
        _within_limits(request, sizes)
        path = f"/api/v1/public/requests/{request_id}/answers"
        created = sender.request("POST", path, json={"files": sizes})
    except NotFoundError as exc:
        # A link whose secret was mistyped shows another token: the server cannot tell.
        raise NotFoundError(exc.message, hint=_CHECK_THE_LINK) from exc
    finally:
        sender.close()
    return request, _reservation(created, len(files))


def _within_limits(request: OpenRequest, sizes: list[int]) -> None:
    if len(sizes) > request.files_left:
        raise UsageError(f"this request accepts {request.files_left} more file(s) at most")
    if sum(sizes) > request.bytes_left:
        raise UsageError(f"this request accepts {request.bytes_left} more bytes at most")


def _upload(
    api: Api,
    transfer_id: str,
    file_id: str,
    path: Path,
    encryptor: age.Encryptor,
    progress: Progress,
    retry_seconds: float,
) -> mf.FileEntry:
    size = path.stat().st_size
    length = encryptor.ciphertext_size(size)
    uploader = Uploader(api, Uploader.create(api, transfer_id, file_id, length), retry_seconds)
    progress.start(path.name, length)
    digests = Digests()
    # Parts sent again after a cut must be the very same bytes: the key is never reused on
    # anything else.
    sent = SentRecord([], lambda digest: None)
    parts = functools.partial(
        encrypted_parts, path, size, encryptor, digests, sent.check, plaintext_digest=True
    )
    send_file(uploader, length, parts, progress.advance)
    return mf.FileEntry(file_id, path.name, size, length, digests.cipher, sha256=digests.plain)


def readable_file(path: Path) -> Path:
    """`path` if it is a regular file this process can read; else a UsageError, before
    anything is asked of the server."""
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return path
