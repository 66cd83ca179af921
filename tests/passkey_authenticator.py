"""A software passkey authenticator for tests: what a browser and a platform authenticator
hand a relying party, made for real, so tests drive the server's WebAuthn checks end to end.

It holds one ES256 credential (a P-256 key from `cryptography`) and answers:

- `create(options)`: a RegistrationResponseJSON (PublicKeyCredential.toJSON() of
  navigator.credentials.create()) with a "none" attestationObject (CBOR), clientDataJSON
  (type, challenge, origin) and authenticatorData (rpIdHash, flags UP/UV/AT, signCount,
  attested credential data with the COSE public key);
- `get(options)`: an AuthenticationResponseJSON whose signature is ECDSA-SHA256 over
  authenticatorData || SHA-256(clientDataJSON).

Everything a test might want wrong — origin, RP id, challenge, flags, counter, signature — can
be overridden per call. Binary fields are base64url without padding, as browsers write them.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import cbor2
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

# authenticatorData flags (WebAuthn section 6.1)
UP, UV, BE, BS, AT = 0x01, 0x04, 0x08, 0x10, 0x40
AAGUID = bytes(16)  # "none" attestation: an all-zero AAGUID


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass
class Authenticator:
    """One credential, for the browser origin `origin` (scheme://host[:port])."""

    origin: str
    key: ec.EllipticCurvePrivateKey = field(default_factory=_new_key)
    credential_id: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    sign_count: int = 0
    counter_step: int = 1  # 0: an authenticator that keeps no counter (passkeys often do)
    user_verified: bool = True
    transports: tuple[str, ...] = ("internal", "hybrid")
    rp_id: str | None = None  # learned from the creation options
    user_handle: bytes | None = None  # likewise

    def create(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        flags: int | None = None,
        client_type: str = "webauthn.create",
    ) -> dict[str, Any]:
        """Answer PublicKeyCredentialCreationOptionsJSON, as create() then toJSON() would."""
        self.rp_id = str(options["rp"]["id"])
        self.user_handle = unb64url(str(options["user"]["id"]))
        client_data = self._client_data(client_type, challenge or str(options["challenge"]), origin)
        default = UP | AT | (UV if self.user_verified else 0)
        auth_data = (
            self._auth_data(rp_id, default if flags is None else flags, self.sign_count)
            + AAGUID
            + len(self.credential_id).to_bytes(2, "big")
            + self.credential_id
            + self.cose_key()
        )
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        public = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return {
            **self._identity(),
            "response": {
                "clientDataJSON": b64url(client_data),
                "attestationObject": b64url(attestation),
                "authenticatorData": b64url(auth_data),
                "transports": list(self.transports),
                "publicKeyAlgorithm": -7,
                "publicKey": b64url(public),
            },
        }

    def get(
        self,
        options: dict[str, Any],
        *,
        origin: str | None = None,
        rp_id: str | None = None,
        challenge: str | None = None,
        flags: int | None = None,
        sign_count: int | None = None,
        signer: ec.EllipticCurvePrivateKey | None = None,
        client_type: str = "webauthn.get",
    ) -> dict[str, Any]:
        """Answer PublicKeyCredentialRequestOptionsJSON, as get() then toJSON() would. Each
        call raises the counter by `counter_step`, unless `sign_count` says what to claim."""
        if sign_count is None:
            self.sign_count += self.counter_step
            sign_count = self.sign_count
        client_data = self._client_data(client_type, challenge or str(options["challenge"]), origin)
        default = UP | (UV if self.user_verified else 0)
        auth_data = self._auth_data(
            rp_id or str(options.get("rpId") or ""), default if flags is None else flags, sign_count
        )
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = (signer or self.key).sign(signed, ec.ECDSA(hashes.SHA256()))
        return {
            **self._identity(),
            "response": {
                "clientDataJSON": b64url(client_data),
                "authenticatorData": b64url(auth_data),
                "signature": b64url(signature),
                "userHandle": b64url(self.user_handle) if self.user_handle else None,
            },
        }

    def cose_key(self) -> bytes:
        """The public key as a COSE_Key: EC2 (1: 2), ES256 (3: -7), P-256 (-1: 1), x, y."""
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _identity(self) -> dict[str, Any]:
        return {
            "id": b64url(self.credential_id),
            "rawId": b64url(self.credential_id),
            "type": "public-key",
            "authenticatorAttachment": "platform",
            "clientExtensionResults": {},
        }

    def _client_data(self, client_type: str, challenge: str, origin: str | None) -> bytes:
        body = {
            "type": client_type,
            "challenge": challenge,
            "origin": origin or self.origin,
            "crossOrigin": False,
        }
        return json.dumps(body, separators=(",", ":")).encode()

    def _auth_data(self, rp_id: str | None, flags: int, sign_count: int) -> bytes:
        rp = rp_id or self.rp_id or ""
        return hashlib.sha256(rp.encode()).digest() + bytes([flags]) + sign_count.to_bytes(4, "big")
