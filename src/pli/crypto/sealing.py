"""Secrets the server must keep readable for itself (TOTP seeds), sealed under a server key
kept outside the database, so a copy of the database alone does not yield them.

    sealed = nonce(12) || ChaCha20-Poly1305(HKDF(server key, info=purpose), nonce, data, purpose)
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from pli.crypto.stream import hkdf_sha256
from pli.errors import DecryptError

_LABEL = b"pli/server-sealed/v1/"


def seal(server_key: bytes, purpose: str, data: bytes) -> bytes:
    info = _LABEL + purpose.encode("ascii")
    nonce = os.urandom(12)
    return nonce + ChaCha20Poly1305(hkdf_sha256(server_key, b"", info)).encrypt(nonce, data, info)


def unseal(server_key: bytes, purpose: str, sealed: bytes) -> bytes:
    info = _LABEL + purpose.encode("ascii")
    aead = ChaCha20Poly1305(hkdf_sha256(server_key, b"", info))
    try:
        return aead.decrypt(sealed[:12], sealed[12:], info)
    except (InvalidTag, ValueError) as exc:
        raise DecryptError("a server-sealed secret could not be opened") from exc
