"""Share links and file requests: what the fragment of their URL holds, and the documents that
go with them. The fragment (after `#`) never reaches the server. See docs/spec/links.md.

    BASE/l/<id>#AGE-SECRET-KEY-1…           a link: its own age identity (Bech32, checksummed)
    BASE/l/<id>#p1.<base64url>              the same identity in an age file under a passphrase
    BASE/r/<id>#age1….<base64url(32 bytes)> a request: its age recipient, and its secret

A request's secret never serves directly: HKDF-SHA256 derives from it the X25519 identity its
public document is encrypted to (the sender reads the title and who asks from it), the key
of the HMAC-SHA256 that authenticates each answer, and the token a sender shows the server.
The server knows neither the secret nor the first two, so it can neither read an answer nor
make up one the requester accepts.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from pli.crypto import age, signing
from pli.crypto.bundle import PublicBundle, fingerprint
from pli.crypto.identity import DeviceIdentity
from pli.crypto.manifest import FileEntry, is_file_entry, is_key_entry, key_entry
from pli.crypto.stream import hkdf_sha256, sealed_size
from pli.errors import CryptoError, DecryptError, IntegrityError, SignatureError, UsageError

WRAPPED_PREFIX = "p1."
REQUEST_KIND = "pli/request/v1"
REQUEST_KEY_KIND = "pli/request-key/v1"
ANSWER_KIND = "pli/answer/v1"
SECRET_SIZE = 32
_IDENTITY_SIZE = 74  # "AGE-SECRET-KEY-1" and 58 Bech32 characters
MAX_SEALED = 4 << 20  # as a manifest: an answer may list a thousand files
_B64URL = re.compile(r"[A-Za-z0-9_-]+")
_ALTERED_LINK = "this link is incomplete or was altered: ask its sender for it again"
_ALTERED_REQUEST = "this request link is incomplete or was altered: ask for it again"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64url_decode(text: str) -> bytes:
    """Strict: the URL-safe alphabet, no padding, canonical trailing bits."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise CryptoError("malformed base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CryptoError("malformed base64url") from exc
    if b64url(data) != text:
        raise CryptoError("non-canonical base64url")
    return data


# --- share links ------------------------------------------------------------------------------


def link_fragment(
    identity: age.X25519Identity, passphrase: str | None = None, *, work_factor: int = 18
) -> str:
    """The fragment of a link's URL: its identity, wrapped under `passphrase` when given."""
    secret = identity.export()
    if passphrase is None:
        return secret
    if not passphrase:
        raise UsageError("the link passphrase must not be empty")
    wrapped = age.encrypt_with_passphrase(secret.encode("ascii"), passphrase, work_factor)
    return WRAPPED_PREFIX + b64url(wrapped)


@dataclass(frozen=True)
class LinkFragment:
    """A link's fragment, read: the identity itself, or the age file that wraps it."""

    identity: age.X25519Identity | None
    wrapped: bytes | None

    @property
    def needs_passphrase(self) -> bool:
        return self.wrapped is not None

    def open(self, passphrase: str | None = None) -> age.X25519Identity:
        if self.identity is not None:
            return self.identity
        if not passphrase or self.wrapped is None:
            raise UsageError("this link is protected by a passphrase: give it")
        try:
            secret = age.decrypt(self.wrapped, [age.ScryptIdentity(passphrase)])
            return age.X25519Identity.parse(secret.decode("ascii"))
        except DecryptError as exc:
            raise DecryptError("wrong passphrase for this link (or the link was altered)") from exc
        except (CryptoError, UnicodeDecodeError) as exc:
            raise IntegrityError(_ALTERED_LINK) from exc


def parse_link_fragment(text: str) -> LinkFragment:
    if not text:
        raise UsageError("this link has no secret part (after #): copy the whole link")
    try:
        if text.startswith(WRAPPED_PREFIX):
            wrapped = b64url_decode(text.removeprefix(WRAPPED_PREFIX))
            _check_wrapped(wrapped)
            return LinkFragment(None, wrapped)
        return LinkFragment(age.X25519Identity.parse(text), None)
    except CryptoError as exc:
        raise IntegrityError(_ALTERED_LINK) from exc


def _check_wrapped(wrapped: bytes) -> None:
    """A cut or altered wrapping is reported as such before the passphrase is asked for: an
    age header with one scrypt stanza, then the payload of exactly one identity."""
    end = age.find_header_end(wrapped)
    if end is None:
        raise CryptoError("truncated age header")
    header = age.parse_header(wrapped[:end])
    if [s.type for s in header.stanzas] != ["scrypt"]:
        raise CryptoError("not a passphrase-encrypted identity")
    if len(wrapped) - end != sealed_size(_IDENTITY_SIZE):
        raise CryptoError("not a passphrase-encrypted identity")


def link_recipient_entry(recipient: age.Recipient) -> dict[str, str]:
    """A link in a manifest's recipients: a key with no account behind it."""
    return {"email": "", "device": "", "age": str(recipient), "ed25519": ""}


# --- file requests ----------------------------------------------------------------------------


def _derived(secret: bytes, use: bytes) -> bytes:
    return hkdf_sha256(secret, b"", b"pli/request/v1 " + use)


@dataclass(frozen=True)
class RequestFragment:
    """What a request's URL hands its senders: where answers go, and how to vouch for them."""

    recipient: age.Recipient
    secret: bytes

    def __str__(self) -> str:
        return f"{self.recipient}.{b64url(self.secret)}"

    @property
    def document_identity(self) -> age.X25519Identity:
        return age.X25519Identity(_derived(self.secret, b"document"))

    @property
    def sender_token(self) -> str:
        """What a sender shows the server to read the request and reserve room for an answer:
        proof of holding the URL, from which the secret cannot be found (the server keeps
        its SHA-256). Without it, the request's id alone opens nothing."""
        return b64url(_derived(self.secret, b"sender"))

    def mac(self, doc: dict[str, Any]) -> bytes:
        message = ANSWER_KIND.encode("ascii") + b"\n" + signing.canonical_json(doc)
        return hmac.digest(_derived(self.secret, b"answer"), message, sha256)


@dataclass(frozen=True)
class RequestKeys:
    """The requester's half: the identity answers are encrypted to, and the secret."""

    identity: age.X25519Identity
    secret: bytes

    @classmethod
    def generate(cls) -> RequestKeys:
        return cls(age.X25519Identity.generate(), os.urandom(SECRET_SIZE))

    @property
    def fragment(self) -> RequestFragment:
        return RequestFragment(self.identity.recipient, self.secret)


def parse_request_fragment(text: str) -> RequestFragment:
    recipient, dot, secret = text.partition(".")
    if not text:
        raise UsageError("this request link has no secret part (after #): copy the whole link")
    try:
        parsed = RequestFragment(age.Recipient.parse(recipient), b64url_decode(secret))
    except CryptoError as exc:
        raise IntegrityError(_ALTERED_REQUEST) from exc
    if not dot or len(parsed.secret) != SECRET_SIZE:
        raise IntegrityError(_ALTERED_REQUEST)
    return parsed


@dataclass(frozen=True)
class RequestDocument:
    """Who asks, and for what: what a sender is shown before they upload."""

    request: str
    requester: dict[str, str]
    title: str
    created: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.requester["age"], self.requester["ed25519"])


def seal_document(me: DeviceIdentity, request_id: str, title: str, keys: RequestKeys) -> bytes:
    """The request's public document, signed by the requester, readable with the fragment."""
    doc = {
        "kind": REQUEST_KIND,
        "request": request_id,
        "requester": key_entry(me.public_bundle()),
        "title": title,
        "recipient": str(keys.identity.recipient),
        "created": _now(),
    }
    plain = signing.canonical_json(me.sign(REQUEST_KIND, doc))
    return age.encrypt(plain, [keys.fragment.document_identity.recipient])


def open_document(sealed: bytes, request_id: str, fragment: RequestFragment) -> RequestDocument:
    try:
        signed = _decrypt_json(sealed, fragment.document_identity)
        doc = signed["doc"]
        signing.verify(signing.public_key(doc["requester"]["ed25519"]), REQUEST_KIND, signed)
        fields = {"kind", "request", "requester", "title", "recipient", "created"}
        if set(doc) != fields or not is_key_entry(doc["requester"]):
            raise SignatureError("malformed request document")
        if not all(isinstance(doc[k], str) for k in ("title", "recipient", "created")):
            raise SignatureError("malformed request document")
    except (CryptoError, KeyError, TypeError) as exc:
        raise IntegrityError(_ALTERED_REQUEST) from exc
    if doc["request"] != request_id or doc["recipient"] != str(fragment.recipient):
        raise IntegrityError(_ALTERED_REQUEST)
    return RequestDocument(request_id, doc["requester"], doc["title"], doc["created"])


def seal_request_key(
    me: DeviceIdentity,
    request_id: str,
    title: str,
    keys: RequestKeys,
    recipients: list[age.Recipient],
) -> bytes:
    """The requester's half, signed by this device and encrypted to the requester's devices."""
    doc = {
        "kind": REQUEST_KEY_KIND,
        "request": request_id,
        "signer": key_entry(me.public_bundle()),
        "identity": keys.identity.export(),
        "secret": age.b64encode(keys.secret),
        "title": title,
        "created": _now(),
    }
    return age.encrypt(signing.canonical_json(me.sign(REQUEST_KEY_KIND, doc)), recipients)


def open_request_key(
    sealed: bytes, me: DeviceIdentity, request_id: str, own: list[PublicBundle]
) -> tuple[RequestKeys, str]:
    """(keys, title) of one of our requests, signed by one of our own devices."""
    try:
        signed = _decrypt_json(sealed, me.age_identity)
        doc = signed["doc"]
        signer = doc["signer"]
        if not any(
            (b.device, b.age, b.ed25519) == (signer["device"], signer["age"], signer["ed25519"])
            for b in own
        ):
            raise IntegrityError("a request's key was signed by a device that is not yours")
        signing.verify(signing.public_key(signer["ed25519"]), REQUEST_KEY_KIND, signed)
        keys = RequestKeys(age.X25519Identity.parse(doc["identity"]), age.b64decode(doc["secret"]))
        title = doc["title"]
    except (CryptoError, KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, IntegrityError):
            raise
        raise IntegrityError("the server sent a malformed key for this request") from exc
    if doc["request"] != request_id or not isinstance(title, str):
        raise IntegrityError("the server sent the key of another request")
    return keys, title


@dataclass(frozen=True)
class Answer:
    """A request's answer, authenticated with the request's secret. `name` is what the
    sender typed: a claim, not an identity."""

    request: str
    transfer: str
    name: str
    message: str
    files: list[FileEntry]
    created: str


_ANSWER_FIELDS = {"kind", "request", "transfer", "name", "message", "files", "created"}


def seal_answer(fragment: RequestFragment, answer: Answer) -> bytes:
    doc: dict[str, Any] = {
        "kind": ANSWER_KIND,
        "request": answer.request,
        "transfer": answer.transfer,
        "name": answer.name,
        "message": answer.message,
        "files": [vars(f) for f in answer.files],
        "created": answer.created,
    }
    envelope = {"doc": doc, "mac": age.b64encode(fragment.mac(doc))}
    return age.encrypt(signing.canonical_json(envelope), [fragment.recipient])


def open_answer(sealed: bytes, keys: RequestKeys, request_id: str, transfer_id: str) -> Answer:
    forged = "this answer was not made with the request's link (made up by the server?)"
    try:
        envelope = _decrypt_json(sealed, keys.identity)
        doc, mac = envelope["doc"], age.b64decode(envelope["mac"])
        if set(envelope) != {"doc", "mac"} or not hmac.compare_digest(mac, keys.fragment.mac(doc)):
            raise IntegrityError(forged)
        _check_answer(doc)
    except (CryptoError, KeyError, TypeError) as exc:
        if isinstance(exc, IntegrityError):
            raise
        raise IntegrityError(forged) from exc
    if doc["request"] != request_id or doc["transfer"] != transfer_id:
        raise IntegrityError("this answer belongs to another request or transfer (replayed?)")
    files = [FileEntry(**f) for f in doc["files"]]
    return Answer(
        doc["request"], doc["transfer"], doc["name"], doc["message"], files, doc["created"]
    )


def _check_answer(doc: Any) -> None:
    ok = (
        isinstance(doc, dict)
        and set(doc) == _ANSWER_FIELDS
        and doc["kind"] == ANSWER_KIND
        and all(
            isinstance(doc[k], str) for k in ("request", "transfer", "name", "message", "created")
        )
        and isinstance(doc["files"], list)
        and all(is_file_entry(f, plaintext_digest=True) for f in doc["files"])
    )
    if not ok:
        raise IntegrityError("malformed answer")


def _decrypt_json(sealed: bytes, identity: age.Identity) -> Any:
    if len(sealed) > MAX_SEALED:
        raise CryptoError("the document is too large")
    plain = age.decrypt(sealed, [identity])
    try:
        return json.loads(plain)
    except (ValueError, RecursionError) as exc:
        raise SignatureError("malformed document") from exc


# --- a link being created, kept until it is sealed --------------------------------------------


def new_link() -> age.X25519Identity:
    return age.X25519Identity.generate()


def keep_link(identity: age.X25519Identity, me: DeviceIdentity) -> bytes:
    """The link's identity encrypted to this device, for an interrupted creation to resume."""
    return age.encrypt(identity.export().encode("ascii"), [me.age_identity.recipient])


def kept_link(sealed: bytes, me: DeviceIdentity) -> age.X25519Identity:
    try:
        return age.X25519Identity.parse(age.decrypt(sealed, [me.age_identity]).decode("ascii"))
    except (CryptoError, UnicodeDecodeError) as exc:
        raise IntegrityError("the saved state of this link is damaged") from exc
