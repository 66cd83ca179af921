"""A device's private identity: an age X25519 key and an Ed25519 signing key.

Stored on disk (and optionally escrowed on the server) only as an age file encrypted with a
passphrase through the scrypt recipient, with an explicit work factor. See docs/spec/keys.md.

    doc = {"kind": "pli/private-bundle/v1", "email", "device", "age_identity": "AGE-SECRET-KEY-1…",
           "ed25519_seed": b64(32 bytes), "created"}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pli.crypto import age, signing
from pli.crypto.bundle import BUNDLE_KIND, PublicBundle, parse_bundle
from pli.errors import CryptoError, DecryptError

PRIVATE_KIND = "pli/private-bundle/v1"


@dataclass(frozen=True)
class DeviceIdentity:
    email: str
    device: str
    age_identity: age.X25519Identity
    signing_key: Ed25519PrivateKey
    created: str

    @classmethod
    def generate(cls, email: str) -> DeviceIdentity:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return cls(
            email=email,
            device=os.urandom(16).hex(),
            age_identity=age.X25519Identity.generate(),
            signing_key=Ed25519PrivateKey.generate(),
            created=now,
        )

    def public_bundle(self) -> PublicBundle:
        doc = {
            "kind": BUNDLE_KIND,
            "email": self.email,
            "device": self.device,
            "age": str(self.age_identity.recipient),
            "ed25519": age.b64encode(self.signing_key.public_key().public_bytes_raw()),
            "created": self.created,
        }
        return parse_bundle(signing.sign(self.signing_key, BUNDLE_KIND, doc))

    def sign(self, context: str, doc: dict[str, Any]) -> dict[str, Any]:
        return signing.sign(self.signing_key, context, doc)

    def seal(self, passphrase: str, work_factor: int) -> bytes:
        """The private bundle, age-encrypted under `passphrase` (scrypt, 2**work_factor)."""
        doc = {
            "kind": PRIVATE_KIND,
            "email": self.email,
            "device": self.device,
            "age_identity": self.age_identity.export(),
            "ed25519_seed": age.b64encode(self.signing_key.private_bytes_raw()),
            "created": self.created,
        }
        return age.encrypt_with_passphrase(signing.canonical_json(doc), passphrase, work_factor)

    @classmethod
    def unseal(cls, sealed: bytes, passphrase: str) -> DeviceIdentity:
        plain = age.decrypt(sealed, [age.ScryptIdentity(passphrase)])
        try:
            doc = json.loads(plain)
            identity = cls(
                email=doc["email"],
                device=doc["device"],
                age_identity=age.X25519Identity.parse(doc["age_identity"]),
                signing_key=Ed25519PrivateKey.from_private_bytes(
                    age.b64decode(doc["ed25519_seed"])
                ),
                created=doc["created"],
            )
        except (ValueError, KeyError, TypeError, CryptoError) as exc:
            raise DecryptError("the private key file is malformed") from exc
        if doc.get("kind") != PRIVATE_KIND:
            raise DecryptError("the private key file is malformed")
        return identity
