"""Transfer manifests: what a transfer holds, signed by the sender, encrypted to everyone.

    doc = {"kind": "pli/manifest/v2", "transfer": id, "sender": key, "recipients": [key...],
           "files": [{"id", "name", "size", "ciphertext_size", "ciphertext_sha256"}],
           "created": ISO 8601, "expires": ISO 8601, "message": str}
    key = {"email", "device", "age", "ed25519"}

The ciphertext hashes bind every blob to the sender's signature (the server cannot swap one
in), and so its plaintext: the age header's MAC admits one file key. The transfer id binds the
manifest to one transfer (an old one cannot be replayed as new). `pli/manifest/v1`, whose
files also carry a plaintext SHA-256, is still read. See docs/spec/manifest.md.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pli.crypto import age, signing
from pli.crypto.bundle import PublicBundle
from pli.crypto.identity import DeviceIdentity
from pli.errors import CryptoError, SignatureError

MANIFEST_KIND = "pli/manifest/v2"  # what is written
MANIFEST_V1 = "pli/manifest/v1"  # still read: its files also carry the plaintext's SHA-256
KINDS = (MANIFEST_KIND, MANIFEST_V1)
MAX_MANIFEST_BYTES = 4 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_FIELDS = {"email", "device", "age", "ed25519"}
_FILE_FIELDS = {"id", "name", "size", "ciphertext_size", "ciphertext_sha256"}
_V1_FILE_FIELDS = _FILE_FIELDS | {"sha256"}
_FIELDS = {"kind", "transfer", "sender", "recipients", "files", "created", "expires", "message"}


@dataclass(frozen=True)
class FileEntry:
    id: str
    name: str
    size: int
    ciphertext_size: int
    ciphertext_sha256: str
    sha256: str | None = None  # the plaintext's: in v1 manifests (and request answers) only


@dataclass(frozen=True)
class Manifest:
    transfer: str
    sender: dict[str, str]
    recipients: list[dict[str, str]]
    files: list[FileEntry]
    created: str
    expires: str
    message: str

    @staticmethod
    def of(doc: dict[str, Any]) -> Manifest:
        """The manifest a document of the checked shape describes."""
        return Manifest(
            transfer=doc["transfer"],
            sender=doc["sender"],
            recipients=doc["recipients"],
            files=[FileEntry(**f) for f in doc["files"]],
            created=doc["created"],
            expires=doc["expires"],
            message=doc["message"],
        )


def key_entry(bundle: PublicBundle) -> dict[str, str]:
    return {
        "email": bundle.email,
        "device": bundle.device,
        "age": bundle.age,
        "ed25519": bundle.ed25519,
    }


def seal(identity: DeviceIdentity, manifest: Manifest, recipients: list[age.Recipient]) -> bytes:
    """Sign the manifest with the sender's device key, then age-encrypt it to `recipients`."""
    doc: dict[str, Any] = {
        "kind": MANIFEST_KIND,
        "transfer": manifest.transfer,
        "sender": manifest.sender,
        "recipients": manifest.recipients,
        # A v1 entry re-shared (or resumed from an older send) loses its plaintext digest.
        "files": [{k: v for k, v in vars(f).items() if k != "sha256"} for f in manifest.files],
        "created": manifest.created,
        "expires": manifest.expires,
        "message": manifest.message,
    }
    _validate(doc)
    return age.encrypt(signing.canonical_json(identity.sign(MANIFEST_KIND, doc)), recipients)


def open_sealed(sealed: bytes, identity: age.Identity) -> tuple[Manifest, dict[str, Any]]:
    """Decrypt a manifest; returns it with its signed envelope. The signature is NOT yet
    checked: the caller must call `verify_signature` with the sender key it has pinned."""
    if len(sealed) > MAX_MANIFEST_BYTES:
        raise CryptoError("the manifest is too large")
    plain = age.decrypt(sealed, [identity])
    try:
        signed = json.loads(plain)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting too deep
        raise SignatureError("malformed manifest") from exc
    doc = signed.get("doc") if isinstance(signed, dict) else None
    if not isinstance(doc, dict):
        raise SignatureError("malformed manifest")
    _validate(doc)
    return Manifest.of(doc), signed


def verify_signature(signed: dict[str, Any], sender: PublicBundle) -> None:
    verify_signed_by(signed, sender.ed25519)


def verify_signed_by(signed: dict[str, Any], ed25519: str) -> None:
    """The signature of an opened manifest, under the context its own (checked) kind names: a
    signature made for one version never verifies as the other's."""
    doc = signed.get("doc")
    if not isinstance(doc, dict):
        raise SignatureError("malformed manifest")
    _validate(doc)
    signing.verify(signing.public_key(ed25519), doc["kind"], signed)


def _validate(doc: dict[str, Any]) -> None:
    ok = (
        set(doc) == _FIELDS
        and doc["kind"] in KINDS
        and all(isinstance(doc[k], str) for k in ("transfer", "created", "expires", "message"))
        and is_key_entry(doc["sender"])
        and isinstance(doc["recipients"], list)
        and all(is_key_entry(r) for r in doc["recipients"])
        and isinstance(doc["files"], list)
        and all(is_file_entry(f, plaintext_digest=doc["kind"] == MANIFEST_V1) for f in doc["files"])
    )
    if not ok:
        raise SignatureError("malformed manifest")


def is_key_entry(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and set(value) == _KEY_FIELDS
        and all(isinstance(v, str) for v in value.values())
    )


def is_file_entry(value: Any, *, plaintext_digest: bool) -> bool:
    """A file entry's shape: with the plaintext's `sha256` (v1 manifests, request answers) or
    without it (v2 manifests), exactly."""
    fields = _V1_FILE_FIELDS if plaintext_digest else _FILE_FIELDS
    if not isinstance(value, dict) or set(value) != fields:
        return False
    sizes = (value["size"], value["ciphertext_size"])
    digests = [value[k] for k in ("sha256", "ciphertext_sha256") if k in value]
    return (
        all(isinstance(v, str) for v in (value["id"], value["name"]))
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in sizes)
        and all(isinstance(h, str) and _HEX64.fullmatch(h) for h in digests)
    )
