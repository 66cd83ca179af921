"""Property tests of the manifest parser: whatever a sender seals to us, `open_sealed` and
`verify_signature` return a well-typed manifest or refuse with a pli error — never another
exception. The sender is hostile in the threat model, and holds a valid key: so the hostile
documents here are really encrypted to the receiver, and some are really signed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pli.crypto import age, manifest
from pli.crypto.identity import DeviceIdentity
from pli.errors import PliError

RECEIVER = DeviceIdentity.generate("receiver@example.org")
SENDER = DeviceIdentity.generate("sender@example.org")
HEX = "ab" * 32

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
SLOW = settings(
    derandomize=True, max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _key(identity: DeviceIdentity) -> dict[str, str]:
    return manifest.key_entry(identity.public_bundle())


def _file() -> dict[str, Any]:
    return {
        "id": "f1",
        "name": "résultats.csv",
        "size": 10,
        "ciphertext_size": 200,
        "ciphertext_sha256": HEX,
    }


def _doc() -> dict[str, Any]:
    return {
        "kind": manifest.MANIFEST_KIND,
        "transfer": "t1",
        "sender": _key(SENDER),
        "recipients": [_key(RECEIVER)],
        "files": [_file()],
        "created": "2026-11-28T12:00:00Z",
        "expires": "2026-12-05T12:00:00Z",
        "message": "",
    }


def _sign(doc: dict[str, Any]) -> dict[str, Any]:
    """A signature by the sender's real key over any document, even one that canonical JSON
    refuses (floats, lone surrogates): a hostile sender is not bound by our encoder."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    message = manifest.MANIFEST_KIND.encode() + b"\n" + text.encode("utf-8", "surrogatepass")
    return {"doc": doc, "sig": age.b64encode(SENDER.signing_key.sign(message))}


def _seal(plain: bytes) -> bytes:
    return age.encrypt(plain, [RECEIVER.age_identity.recipient])


def _open_and_verify(sealed: bytes) -> manifest.Manifest:
    opened, signed = manifest.open_sealed(sealed, RECEIVER.age_identity)
    manifest.verify_signature(signed, SENDER.public_bundle())
    return opened


def _open_or_refuse(sealed: bytes) -> None:
    """The property: a pli error, or a manifest whose every field has the type it promises."""
    try:
        opened = _open_and_verify(sealed)
    except PliError:
        return
    assert all(
        isinstance(v, str)
        for v in (opened.transfer, opened.created, opened.expires, opened.message)
    )
    for entry in opened.files:
        assert isinstance(entry.name, str)
        assert isinstance(entry.size, int)
        assert not isinstance(entry.size, bool)
        assert entry.size >= 0
        assert entry.sha256 is None  # v2: the plaintext's digest is not part of it
    assert all(isinstance(v, str) for v in opened.sender.values())


def test_the_reference_manifest_opens() -> None:
    """The starting point of the mutations below is itself valid."""
    opened, signed = manifest.open_sealed(
        _seal(json.dumps(_sign(_doc())).encode()), RECEIVER.age_identity
    )
    manifest.verify_signature(signed, SENDER.public_bundle())
    assert opened.files[0].name == "résultats.csv"


@SLOW
@given(value=JSON)
def test_any_json_sealed_to_us(value: Any) -> None:
    _open_or_refuse(_seal(json.dumps(value).encode()))


@SLOW
@given(doc=JSON, sig=JSON)
def test_any_envelope_sealed_to_us(doc: Any, sig: Any) -> None:
    _open_or_refuse(_seal(json.dumps({"doc": doc, "sig": sig}).encode()))


@SLOW
@given(plain=st.binary(max_size=300))
def test_any_bytes_sealed_to_us(plain: bytes) -> None:
    with pytest.raises(PliError):
        manifest.open_sealed(_seal(plain), RECEIVER.age_identity)


@SLOW
@given(field=st.sampled_from(sorted(manifest._FIELDS)), value=JSON, signed=st.booleans())
def test_one_hostile_field(field: str, value: Any, signed: bool) -> None:
    doc = {**_doc(), field: value}
    envelope = _sign(doc) if signed else {"doc": doc, "sig": _sign(_doc())["sig"]}
    _open_or_refuse(_seal(json.dumps(envelope).encode()))


@SLOW
@given(
    field=st.sampled_from(sorted(manifest._FILE_FIELDS)),
    value=JSON | st.integers(min_value=-(2**70), max_value=2**70),
    where=st.sampled_from(["file", "sender", "recipient"]),
)
def test_one_hostile_field_deeper(field: str, value: Any, where: str) -> None:
    doc = _doc()
    if where == "file":
        doc["files"] = [{**_file(), field: value}]
    elif where == "sender":
        doc["sender"] = {**_key(SENDER), "email": value}
    else:
        doc["recipients"] = [_key(RECEIVER), value]
    _open_or_refuse(_seal(json.dumps(_sign(doc)).encode()))


@SLOW
@given(key=st.text(max_size=8), value=JSON)
def test_extra_fields_are_refused(key: str, value: Any) -> None:
    doc = _doc()
    if key in doc:
        return
    doc[key] = value
    with pytest.raises(PliError):
        manifest.open_sealed(_seal(json.dumps(_sign(doc)).encode()), RECEIVER.age_identity)


@pytest.mark.parametrize(
    "plain",
    [
        b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than the recursion limit
        b'{"doc": ' * 50_000 + b"1" + b"}" * 50_000,
        b"NaN",
        b'{"doc": {"kind": "pli/manifest/v1"}, "sig": "' + b"A" * 100 + b'"}',
        b"1" * 5000,  # longer than Python converts to an int
        "\ufeff{}".encode(),
        json.dumps({"doc": _doc(), "sig": ""}).encode("utf-16"),
    ],
    ids=["deep-list", "deep-object", "nan", "bad-sig", "huge-int", "bom", "utf-16"],
)
def test_hostile_plaintexts(plain: bytes) -> None:
    with pytest.raises(PliError):
        _open_and_verify(_seal(plain))


@settings(derandomize=True, max_examples=100, deadline=None)
@given(garbage=st.binary(max_size=400))
def test_bytes_that_are_not_an_age_file(garbage: bytes) -> None:
    with pytest.raises(PliError):
        manifest.open_sealed(b"age-encryption.org/v1\n" + garbage, RECEIVER.age_identity)
