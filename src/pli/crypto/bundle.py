"""Public key bundles: what a device publishes, self-signed. Public keys only, so the server
may import this module to check what it is given; private keys live in pli.crypto.identity.

    doc = {"kind": "pli/key-bundle/v1", "email": str, "device": 32 hex chars,
           "age": "age1…", "ed25519": b64(32 bytes), "created": ISO 8601 UTC}

See docs/spec/keys.md.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from pli.crypto import signing
from pli.crypto.age import Recipient
from pli.errors import CryptoError, SignatureError

BUNDLE_KIND = "pli/key-bundle/v1"
_FIELDS = {"kind", "email", "device", "age", "ed25519", "created"}
_DEVICE = re.compile(r"[0-9a-f]{32}")
_FINGERPRINT_KIND = b"pli/fingerprint/v1\n"


@dataclass(frozen=True)
class PublicBundle:
    email: str
    device: str
    age: str
    ed25519: str
    created: str
    signed: dict[str, Any]

    @property
    def recipient(self) -> Recipient:
        return Recipient.parse(self.age)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.age, self.ed25519)

    def same_keys(self, other: PublicBundle) -> bool:
        return (self.device, self.age, self.ed25519) == (other.device, other.age, other.ed25519)


def fingerprint(age: str, ed25519: str) -> str:
    """A short, readable digest of both public keys for people to compare: 128 bits of
    SHA-256 as eight groups of four hex digits. Clients pin the full keys, not this."""
    digest = hashlib.sha256(_FINGERPRINT_KIND + age.encode() + b"\n" + ed25519.encode()).hexdigest()
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def parse_bundle(signed: Any) -> PublicBundle:
    """Check a signed public bundle's shape and self-signature; refuse anything else."""
    doc = signed.get("doc") if isinstance(signed, dict) else None
    if not isinstance(doc, dict) or set(doc) != _FIELDS:
        raise SignatureError("malformed key bundle")
    if not all(isinstance(doc[k], str) for k in _FIELDS):
        raise SignatureError("malformed key bundle")
    if not _DEVICE.fullmatch(doc["device"]) or len(doc["email"]) > 254:
        raise SignatureError("malformed key bundle")
    try:
        Recipient.parse(doc["age"])
    except CryptoError as exc:
        raise SignatureError("malformed key bundle") from exc
    signing.verify(signing.public_key(doc["ed25519"]), BUNDLE_KIND, signed)
    return PublicBundle(
        email=doc["email"],
        device=doc["device"],
        age=doc["age"],
        ed25519=doc["ed25519"],
        created=doc["created"],
        signed=signed,
    )
