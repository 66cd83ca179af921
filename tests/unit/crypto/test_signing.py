"""pli.crypto.signing: canonical JSON, Ed25519 signatures bound to a context string."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pli.crypto import signing
from pli.crypto.age import b64encode
from pli.errors import CryptoError, SignatureError

KIND = "pli/test-document/v1"
OTHER_KIND = "pli/other-document/v1"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def document(**fields: Any) -> dict[str, Any]:
    return {"kind": KIND, "name": "résultats.pdf", "size": 42, "tags": ["a", "b"], **fields}


# --- canonical JSON ---------------------------------------------------------------------------


def test_keys_are_sorted_and_whitespace_is_gone() -> None:
    value = {"b": 1, "a": [1, 2, {"d": None, "c": True}], "A": False}
    assert signing.canonical_json(value) == b'{"A":false,"a":[1,2,{"c":true,"d":null}],"b":1}'


def test_key_order_of_the_input_does_not_matter() -> None:
    one = {"x": 1, "y": {"p": "q", "o": "r"}}
    two = {"y": {"o": "r", "p": "q"}, "x": 1}
    assert signing.canonical_json(one) == signing.canonical_json(two)


def test_non_ascii_is_kept_as_utf8() -> None:
    out = signing.canonical_json({"name": "Hôpital Saint-Étienne ✓ 医院"})
    assert out == '{"name":"Hôpital Saint-Étienne ✓ 医院"}'.encode()
    assert b"\\u" not in out


def test_required_escapes_only() -> None:
    out = signing.canonical_json(['quote" backslash\\ newline\n tab\t nul\x00 \u2028'])
    assert out == b'["quote\\" backslash\\\\ newline\\n tab\\t nul\\u0000 \xe2\x80\xa8"]'
    assert json.loads(out) == ['quote" backslash\\ newline\n tab\t nul\x00 \u2028']


def test_integers_up_to_2_53_are_allowed() -> None:
    assert signing.canonical_json([2**53, -(2**53), 0]) == b"[9007199254740992,-9007199254740992,0]"


@pytest.mark.parametrize("value", [2**53 + 1, -(2**53) - 1, 10**30])
def test_big_integers_are_refused(value: int) -> None:
    with pytest.raises(CryptoError):
        signing.canonical_json({"n": value})
    with pytest.raises(CryptoError):
        signing.canonical_json([[value]])


@pytest.mark.parametrize("value", [1.0, 0.5, float("nan"), float("inf"), -0.0])
def test_floats_are_refused(value: float) -> None:
    with pytest.raises(CryptoError):
        signing.canonical_json({"f": value})


@pytest.mark.parametrize("key", ["clé", "名前", "\u00a0"])
def test_non_ascii_keys_are_refused(key: str) -> None:
    with pytest.raises(CryptoError):
        signing.canonical_json({key: 1})
    with pytest.raises(CryptoError):
        signing.canonical_json({"outer": [{key: 1}]})


@pytest.mark.parametrize(
    "value", [{1: "int key"}, {None: "null key"}, ("tuple",), b"bytes", {1, 2}]
)
def test_other_types_are_refused(value: Any) -> None:
    with pytest.raises(CryptoError):
        signing.canonical_json(value)


def test_booleans_are_not_integers() -> None:
    assert signing.canonical_json([True, False, None]) == b"[true,false,null]"


# --- signatures -------------------------------------------------------------------------------


def test_sign_and_verify(key: Ed25519PrivateKey) -> None:
    doc = document()
    signed = signing.sign(key, KIND, doc)
    assert set(signed) == {"doc", "sig"}
    assert signing.verify(key.public_key(), KIND, signed) == doc


def test_signature_survives_a_json_round_trip(key: Ed25519PrivateKey) -> None:
    signed = signing.sign(key, KIND, document())
    received = json.loads(json.dumps(signed, indent=4, ensure_ascii=True))
    assert signing.verify(key.public_key(), KIND, received) == document()


def test_public_key_from_text(key: Ed25519PrivateKey) -> None:
    text = b64encode(key.public_key().public_bytes_raw())
    signed = signing.sign(key, KIND, document())
    assert signing.verify(signing.public_key(text), KIND, signed) == document()


@pytest.mark.parametrize("text", ["", "AAAA", b64encode(bytes(31)), b64encode(bytes(33)), "!!"])
def test_malformed_public_key_is_refused(text: str) -> None:
    with pytest.raises(SignatureError):
        signing.public_key(text)


def test_signing_requires_the_document_to_name_its_kind(key: Ed25519PrivateKey) -> None:
    with pytest.raises(CryptoError):
        signing.sign(key, OTHER_KIND, document())
    with pytest.raises(CryptoError):
        signing.sign(key, KIND, {"name": "no kind"})


def test_signature_for_one_kind_fails_for_another(key: Ed25519PrivateKey) -> None:
    signed = signing.sign(key, KIND, document())
    with pytest.raises(SignatureError):
        signing.verify(key.public_key(), OTHER_KIND, signed)
    # Relabelling the document does not help: the context is inside what was signed.
    relabelled = {"doc": {**signed["doc"], "kind": OTHER_KIND}, "sig": signed["sig"]}
    with pytest.raises(SignatureError):
        signing.verify(key.public_key(), OTHER_KIND, relabelled)


def test_context_is_part_of_the_signed_message(key: Ed25519PrivateKey) -> None:
    # Same document bytes, different contexts: the raw signatures differ.
    one = signing.sign(key, KIND, {"kind": KIND})
    two = signing.sign(key, OTHER_KIND, {"kind": OTHER_KIND})
    assert one["sig"] != two["sig"]


@pytest.mark.parametrize(
    "change",
    [
        {"name": "résultats.pdf "},
        {"size": 43},
        {"tags": ["b", "a"]},
        {"extra": None},
        {"size": "42"},
    ],
)
def test_tampered_document_is_refused(key: Ed25519PrivateKey, change: dict[str, Any]) -> None:
    signed = signing.sign(key, KIND, document())
    tampered = {"doc": {**signed["doc"], **change}, "sig": signed["sig"]}
    with pytest.raises(SignatureError):
        signing.verify(key.public_key(), KIND, tampered)


def test_dropped_field_is_refused(key: Ed25519PrivateKey) -> None:
    signed = signing.sign(key, KIND, document())
    doc = dict(signed["doc"])
    del doc["size"]
    with pytest.raises(SignatureError):
        signing.verify(key.public_key(), KIND, {"doc": doc, "sig": signed["sig"]})


def test_other_key_is_refused(key: Ed25519PrivateKey) -> None:
    signed = signing.sign(key, KIND, document())
    with pytest.raises(SignatureError):
        signing.verify(Ed25519PrivateKey.generate().public_key(), KIND, signed)


def test_tampered_signature_is_refused(key: Ed25519PrivateKey) -> None:
    signed = signing.sign(key, KIND, document())
    sig = signed["sig"]
    swapped = ("B" if sig[0] == "A" else "A") + sig[1:]
    with pytest.raises(SignatureError):
        signing.verify(key.public_key(), KIND, {"doc": signed["doc"], "sig": swapped})


def test_float_smuggled_into_a_received_document_is_refused(key: Ed25519PrivateKey) -> None:
    signed = signing.sign(key, KIND, document())
    tampered = {"doc": {**signed["doc"], "size": 42.0}, "sig": signed["sig"]}
    with pytest.raises(SignatureError):
        signing.verify(key.public_key(), KIND, tampered)


@pytest.mark.parametrize(
    "shape",
    [
        None,
        [],
        "text",
        {"doc": {"kind": KIND}},
        {"sig": "AAAA"},
        {"doc": {"kind": KIND}, "sig": "AAAA", "extra": 1},
        {"doc": [KIND], "sig": "AAAA"},
        {"doc": {"kind": KIND}, "sig": 1},
        {"doc": {"kind": KIND}, "sig": "not base64!"},
        {"doc": {"kind": KIND}, "sig": ""},
        {"doc": {}, "sig": "AAAA"},
    ],
)
def test_malformed_envelopes_are_refused(key: Ed25519PrivateKey, shape: Any) -> None:
    with pytest.raises(SignatureError):
        signing.verify(key.public_key(), KIND, shape)
