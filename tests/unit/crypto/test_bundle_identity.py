"""pli.crypto.bundle and pli.crypto.identity: public bundles, fingerprints, sealed identities."""

from __future__ import annotations

import json
import re
from typing import Any

import pyrage
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pli.crypto import age, signing
from pli.crypto.bundle import BUNDLE_KIND, PublicBundle, fingerprint, parse_bundle
from pli.crypto.identity import PRIVATE_KIND, DeviceIdentity
from pli.errors import CryptoError, DecryptError, SignatureError

WORK = 10
FINGERPRINT = re.compile(r"[0-9a-f]{4}( [0-9a-f]{4}){7}")
_DEVICE = DeviceIdentity.generate("alice@example.org")
_DOC: dict[str, Any] = dict(_DEVICE.public_bundle().signed["doc"])


@pytest.fixture(scope="module")
def device() -> DeviceIdentity:
    return _DEVICE


@pytest.fixture(scope="module")
def sealed(device: DeviceIdentity) -> bytes:
    return device.seal("a good passphrase", WORK)


# --- public bundles ---------------------------------------------------------------------------


def test_public_bundle_round_trip(device: DeviceIdentity) -> None:
    bundle = device.public_bundle()
    assert bundle.email == "alice@example.org"
    assert re.fullmatch(r"[0-9a-f]{32}", bundle.device)
    assert bundle.age == str(device.age_identity.recipient)
    assert bundle.recipient == device.age_identity.recipient
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", bundle.created)
    received = json.loads(json.dumps(bundle.signed))
    again = parse_bundle(received)
    assert again == bundle
    assert again.same_keys(bundle)
    assert again.fingerprint == bundle.fingerprint


def test_bundle_only_holds_public_keys(device: DeviceIdentity) -> None:
    text = json.dumps(device.public_bundle().signed)
    assert "AGE-SECRET-KEY" not in text
    seed = age.b64encode(device.signing_key.private_bytes_raw())
    assert seed not in text


def test_fingerprint_format(device: DeviceIdentity) -> None:
    bundle = device.public_bundle()
    assert FINGERPRINT.fullmatch(bundle.fingerprint)
    assert bundle.fingerprint == fingerprint(bundle.age, bundle.ed25519)


def test_fingerprint_covers_both_keys(device: DeviceIdentity) -> None:
    bundle = device.public_bundle()
    other = DeviceIdentity.generate("alice@example.org").public_bundle()
    assert fingerprint(bundle.age, bundle.ed25519) != fingerprint(other.age, bundle.ed25519)
    assert fingerprint(bundle.age, bundle.ed25519) != fingerprint(bundle.age, other.ed25519)
    assert bundle.fingerprint != other.fingerprint
    assert not bundle.same_keys(other)


def test_fingerprint_is_stable() -> None:
    # Fixed inputs, fixed output: a fingerprint people compared yesterday still matches today.
    age_key = "age1" + "q" * 58
    value = fingerprint(age_key, "A" * 43)
    assert value == fingerprint(age_key, "A" * 43)
    assert FINGERPRINT.fullmatch(value)


@pytest.mark.parametrize(
    "change",
    [
        {"email": "mallory@example.org"},
        {"created": "2030-01-01T00:00:00Z"},
        {"device": "0" * 32},
    ],
)
def test_changed_field_breaks_the_signature(device: DeviceIdentity, change: dict[str, str]) -> None:
    signed = device.public_bundle().signed
    tampered = {"doc": {**signed["doc"], **change}, "sig": signed["sig"]}
    with pytest.raises(SignatureError):
        parse_bundle(tampered)


def test_swapped_age_key_breaks_the_signature(device: DeviceIdentity) -> None:
    signed = device.public_bundle().signed
    other = str(age.X25519Identity.generate().recipient)
    with pytest.raises(SignatureError):
        parse_bundle({"doc": {**signed["doc"], "age": other}, "sig": signed["sig"]})


def test_bundle_signed_by_another_key_is_refused(device: DeviceIdentity) -> None:
    doc = dict(device.public_bundle().signed["doc"])
    forged = signing.sign(Ed25519PrivateKey.generate(), BUNDLE_KIND, doc)
    with pytest.raises(SignatureError):
        parse_bundle(forged)


def test_signature_of_another_kind_is_refused(device: DeviceIdentity) -> None:
    doc = {**device.public_bundle().signed["doc"], "kind": "pli/manifest/v1"}
    with pytest.raises(SignatureError):
        parse_bundle(signing.sign(device.signing_key, "pli/manifest/v1", doc))


_BAD_DOCS = {
    "extra field": {**_DOC, "extra": "field"},
    "missing field": {k: v for k, v in _DOC.items() if k != "email"},
    "email not a string": {**_DOC, "email": 42},
    "email null": {**_DOC, "email": None},
    "email too long": {**_DOC, "email": "a" * 250 + "@x.fr"},
    "device uppercase": {**_DOC, "device": _DOC["device"].upper()},
    "device short": {**_DOC, "device": _DOC["device"][:-1]},
    "device long": {**_DOC, "device": _DOC["device"] + "0"},
    "device path": {**_DOC, "device": "../" + _DOC["device"][3:]},
    "age uppercase": {**_DOC, "age": _DOC["age"].upper()},
    "age garbage": {**_DOC, "age": "age1notakey"},
    "age empty": {**_DOC, "age": ""},
    "ed25519 short": {**_DOC, "ed25519": "AAAA"},
    "ed25519 empty": {**_DOC, "ed25519": ""},
    "created not a string": {**_DOC, "created": 1700000000},
    "other version": {**_DOC, "kind": "pli/key-bundle/v2"},
}


@pytest.mark.parametrize("name", sorted(_BAD_DOCS))
def test_malformed_documents_are_refused(name: str) -> None:
    doc = _BAD_DOCS[name]
    # Validly signed for its own kind, so the refusal is for the shape, not the signature.
    with pytest.raises(SignatureError):
        parse_bundle(signing.sign(_DEVICE.signing_key, doc["kind"], doc))


@pytest.mark.parametrize(
    "envelope",
    [None, "bundle", [], {}, {"doc": "x", "sig": "AAAA"}, {"doc": _DOC}, {"doc": _DOC, "sig": 1}],
)
def test_malformed_envelopes_are_refused(envelope: Any) -> None:
    with pytest.raises(SignatureError):
        parse_bundle(envelope)


def test_unsigned_bundle_is_refused() -> None:
    signed = _DEVICE.public_bundle().signed
    with pytest.raises(SignatureError):
        parse_bundle({**signed, "sig": ""})
    assert parse_bundle(signed).device == _DOC["device"]


def test_same_keys_ignores_email_and_date(device: DeviceIdentity) -> None:
    bundle = device.public_bundle()
    copy = PublicBundle(
        email="other@example.org",
        device=bundle.device,
        age=bundle.age,
        ed25519=bundle.ed25519,
        created="2000-01-01T00:00:00Z",
        signed={},
    )
    assert bundle.same_keys(copy)


# --- private identity -------------------------------------------------------------------------


def test_seal_and_unseal(device: DeviceIdentity, sealed: bytes) -> None:
    assert sealed.startswith(age.INTRO)
    assert b" scrypt " in sealed.split(b"\n---", 1)[0]
    assert device.age_identity.export().encode() not in sealed
    again = DeviceIdentity.unseal(sealed, "a good passphrase")
    assert again.email == device.email
    assert again.device == device.device
    assert again.created == device.created
    assert again.age_identity.export() == device.age_identity.export()
    assert again.signing_key.private_bytes_raw() == device.signing_key.private_bytes_raw()
    assert again.public_bundle().signed["doc"] == device.public_bundle().signed["doc"]


def test_sealed_identity_is_a_standard_age_file(device: DeviceIdentity, sealed: bytes) -> None:
    plain = pyrage.passphrase.decrypt(sealed, "a good passphrase")
    doc = json.loads(plain)
    assert doc["kind"] == PRIVATE_KIND
    assert doc["age_identity"] == device.age_identity.export()


def test_sealed_with_the_requested_work_factor(sealed: bytes) -> None:
    header = age.parse_header(sealed[: age.find_header_end(sealed)])
    (stanza,) = header.stanzas
    assert stanza.type == "scrypt"
    assert stanza.args[1] == str(WORK)


@pytest.mark.parametrize("guess", ["a good passphrase ", "A good passphrase", "", "wrong"])
def test_wrong_passphrase_is_refused(sealed: bytes, guess: str) -> None:
    with pytest.raises(DecryptError):
        DeviceIdentity.unseal(sealed, guess)


def test_tampered_sealed_identity_is_refused(sealed: bytes) -> None:
    for index in (len(sealed) - 1, len(sealed) // 2, 30):
        tampered = bytearray(sealed)
        tampered[index] ^= 1
        with pytest.raises(DecryptError):
            DeviceIdentity.unseal(bytes(tampered), "a good passphrase")


def test_identity_sealed_to_a_key_is_refused(device: DeviceIdentity) -> None:
    # Only a passphrase file is a private bundle.
    other = age.encrypt(b"{}", [device.age_identity.recipient])
    with pytest.raises(DecryptError):
        DeviceIdentity.unseal(other, "a good passphrase")


@pytest.mark.parametrize(
    "plain",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"kind": "pli/private-bundle/v1"}',
        b"\xff\xfe",
    ],
)
def test_malformed_private_bundle_is_refused(plain: bytes) -> None:
    with pytest.raises(DecryptError):
        DeviceIdentity.unseal(age.encrypt_with_passphrase(plain, "pw", WORK), "pw")


def test_private_bundle_of_another_kind_is_refused(device: DeviceIdentity) -> None:
    plain = json.loads(pyrage.passphrase.decrypt(device.seal("pw", WORK), "pw"))
    for kind in ("pli/key-bundle/v1", "pli/private-bundle/v2", None):
        doc = {**plain, "kind": kind}
        with pytest.raises(DecryptError):
            DeviceIdentity.unseal(
                age.encrypt_with_passphrase(json.dumps(doc).encode(), "pw", 4), "pw"
            )


@pytest.mark.parametrize(
    ("field", "value"),
    [("age_identity", "AGE-SECRET-KEY-1NOTAKEY"), ("ed25519_seed", "AAAA"), ("email", None)],
)
def test_private_bundle_with_bad_keys_is_refused(
    device: DeviceIdentity, field: str, value: str | None
) -> None:
    plain = json.loads(pyrage.passphrase.decrypt(device.seal("pw", WORK), "pw"))
    if value is None:
        del plain[field]
    else:
        plain[field] = value
    with pytest.raises(DecryptError):
        DeviceIdentity.unseal(
            age.encrypt_with_passphrase(json.dumps(plain).encode(), "pw", 4), "pw"
        )


def test_seal_refuses_an_unusable_work_factor(device: DeviceIdentity) -> None:
    with pytest.raises(CryptoError):
        device.seal("pw", age.MAX_SCRYPT_WORK_FACTOR + 1)


def test_device_signs_documents_its_bundle_verifies(device: DeviceIdentity) -> None:
    doc = {"kind": "pli/test/v1", "value": 1}
    signed = device.sign("pli/test/v1", doc)
    key = signing.public_key(device.public_bundle().ed25519)
    assert signing.verify(key, "pli/test/v1", signed) == doc


def test_generated_devices_differ() -> None:
    one = DeviceIdentity.generate("bob@example.org")
    two = DeviceIdentity.generate("bob@example.org")
    assert one.device != two.device
    assert one.age_identity.export() != two.age_identity.export()
    assert one.public_bundle().fingerprint != two.public_bundle().fingerprint
