"""Property tests of the key-bundle parser: whatever JSON arrives, `parse_bundle` returns a
bundle whose keys are usable, or refuses with a pli error — never another exception.

A bundle comes from a server (a malicious one, in the threat model) or from a client publishing
one (the server checks it with the same function), so every input here is hostile."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pli.crypto import age, signing
from pli.crypto.bundle import BUNDLE_KIND, parse_bundle
from pli.errors import PliError, SignatureError

# Any JSON value, as json.loads would return it (floats, NaN and huge integers included).
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ("kind", "email", "device", "age", "ed25519", "created")

# X25519 points of small order: an exchange with any of them yields an all-zero secret, which
# age forbids. Encoded as recipients, they are well-formed bech32 all the same.
LOW_ORDER_POINTS = [
    bytes(32),
    (1).to_bytes(32, "little"),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    bytes.fromhex("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    bytes.fromhex("eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
]
AGE_KEYS = st.one_of(
    st.binary(min_size=32, max_size=32),
    st.sampled_from(LOW_ORDER_POINTS),
).map(lambda raw: str(age.Recipient(raw)))


def _signed(key: Ed25519PrivateKey, doc: dict[str, Any]) -> dict[str, Any]:
    return {"doc": doc, "sig": age.b64encode(key.sign(BUNDLE_KIND.encode() + b"\n" + _c(doc)))}


def _c(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def _valid_doc(key: Ed25519PrivateKey, age_key: str) -> dict[str, Any]:
    return {
        "kind": BUNDLE_KIND,
        "email": "a@example.org",
        "device": "0123456789abcdef0123456789abcdef",
        "age": age_key,
        "ed25519": age.b64encode(key.public_key().public_bytes_raw()),
        "created": "2026-11-28T12:00:00Z",
    }


def _parse_or_refuse(value: Any) -> None:
    """The property: a bundle whose recipient can be encrypted to, or a pli error."""
    try:
        bundle = parse_bundle(value)
    except PliError:
        return
    assert set(bundle.signed["doc"]) == set(FIELDS)
    # A parsed bundle is one a sender can use: encrypting to it works, and its owner decrypts.
    sealed = age.encrypt(b"probe", [bundle.recipient])
    assert sealed.startswith(b"age-encryption.org/v1\n")
    assert bundle.fingerprint.count(" ") == 7


@settings(derandomize=True, max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON)
def test_arbitrary_json_is_refused_with_a_pli_error(value: Any) -> None:
    with pytest.raises(PliError):
        parse_bundle(value)


@settings(derandomize=True, max_examples=300)
@given(doc=JSON, sig=JSON)
def test_arbitrary_envelopes_are_refused_with_a_pli_error(doc: Any, sig: Any) -> None:
    with pytest.raises(PliError):
        parse_bundle({"doc": doc, "sig": sig})


@settings(derandomize=True, max_examples=300)
@given(field=st.sampled_from(FIELDS), value=JSON, resign=st.booleans(), age_key=AGE_KEYS)
def test_one_hostile_field_in_a_bundle(field: str, value: Any, resign: bool, age_key: str) -> None:
    """Start from a valid bundle, replace one field with anything, and sign it again (as its
    owner could) or not (as a server could not)."""
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    doc = {**_valid_doc(key, age_key), field: value}
    if resign:
        _parse_or_refuse(_signed(key, doc))
    else:
        original = signing.sign(key, BUNDLE_KIND, _valid_doc(key, age_key))
        _parse_or_refuse({"doc": doc, "sig": original["sig"]})


@settings(derandomize=True, max_examples=200)
@given(age_key=AGE_KEYS, email=st.text(max_size=300), created=st.text(max_size=40))
def test_self_signed_bundles_with_any_keys(age_key: str, email: str, created: str) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
    doc = {**_valid_doc(key, age_key), "email": email, "created": created}
    _parse_or_refuse(_signed(key, doc))


@pytest.mark.parametrize("point", LOW_ORDER_POINTS, ids=lambda p: p.hex()[:8])
def test_low_order_age_keys_are_refused(point: bytes) -> None:
    """A bundle naming a small-order X25519 point would make every sender's encryption fail;
    it is refused when parsed, by the server on publication and by clients on lookup."""
    key = Ed25519PrivateKey.generate()
    doc = _valid_doc(key, str(age.Recipient(point)))
    with pytest.raises(SignatureError):
        parse_bundle(signing.sign(key, BUNDLE_KIND, doc))
