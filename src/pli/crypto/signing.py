"""Signed JSON documents: canonical encoding, context strings, Ed25519.

A signed document is `{"doc": {...}, "sig": b64(Ed25519(context || 0x0A || canonical(doc)))}`
where `doc["kind"] == context`. The context names the document's kind and version, so a
signature made for one purpose (a key bundle) can never be replayed as another (a manifest).

Canonical form: RFC 8785 (JCS) restricted to what pli writes — objects with ASCII keys, arrays,
strings, booleans, null and integers within ±2**53 — for which sorted keys, no whitespace and
UTF-8 without escaping beyond JSON's required ones is exactly JCS. Floats are refused.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pli.crypto.age import b64decode, b64encode
from pli.errors import CryptoError, SignatureError

_MAX_INT = 1 << 53


def _check(value: Any) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or not key.isascii():
                raise CryptoError("document keys must be ASCII strings")
            _check(item)
    elif isinstance(value, list):
        for item in value:
            _check(item)
    elif isinstance(value, bool) or value is None or isinstance(value, str):
        return
    elif isinstance(value, int):
        if abs(value) > _MAX_INT:
            raise CryptoError("integer out of range in a signed document")
    else:
        raise CryptoError(f"a signed document cannot hold a {type(value).__name__}")


def canonical_json(value: Any) -> bytes:
    _check(value)
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # an unpaired surrogate, e.g. from a "\ud800" escape
        raise CryptoError("a signed document cannot hold unpaired surrogates") from exc


def _message(context: str, doc: dict[str, Any]) -> bytes:
    return context.encode("ascii") + b"\n" + canonical_json(doc)


def sign(key: Ed25519PrivateKey, context: str, doc: dict[str, Any]) -> dict[str, Any]:
    if doc.get("kind") != context:
        raise CryptoError("a signed document must name its own kind")
    return {"doc": doc, "sig": b64encode(key.sign(_message(context, doc)))}


def public_key(raw_b64: str) -> Ed25519PublicKey:
    try:
        raw = b64decode(raw_b64)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (CryptoError, ValueError) as exc:
        raise SignatureError("malformed signing key") from exc


def verify(key: Ed25519PublicKey, context: str, signed: Any) -> dict[str, Any]:
    """The document inside `signed` if its signature verifies under `key` for `context`."""
    if not isinstance(signed, dict) or set(signed) != {"doc", "sig"}:
        raise SignatureError("malformed signed document")
    doc, sig = signed["doc"], signed["sig"]
    if not isinstance(doc, dict) or not isinstance(sig, str) or doc.get("kind") != context:
        raise SignatureError("malformed signed document")
    try:
        key.verify(b64decode(sig), _message(context, doc))
    except (InvalidSignature, CryptoError) as exc:
        raise SignatureError("signature verification failed") from exc
    return doc
