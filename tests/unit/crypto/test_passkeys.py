"""pli.crypto.passkeys: WebAuthn options, and the checks of registration and authentication
responses made by a real (software) authenticator. Every refusal is one SignatureError."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from pli.crypto import passkeys
from pli.crypto.passkeys import RelyingParty
from pli.errors import SignatureError, UsageError
from tests.passkey_authenticator import AT, UP, UV, Authenticator, b64url, unb64url

PARTY = RelyingParty(rp_id="files.example.org", origin="https://files.example.org")
HANDLE = bytes(range(64))


def _creation(challenge: bytes, exclude: list[passkeys.Stored] | None = None) -> dict[str, Any]:
    return passkeys.registration_options(
        PARTY,
        user_handle=HANDLE,
        user_name="alice@example.org",
        challenge=challenge,
        exclude=exclude or [],
    )


def _enrolled(authenticator: Authenticator) -> passkeys.Stored:
    challenge = passkeys.new_challenge()
    made = authenticator.create(_creation(challenge))
    return passkeys.verify_registration(made, challenge=challenge, party=PARTY)


def _request(challenge: bytes, allow: list[passkeys.Stored]) -> dict[str, Any]:
    return passkeys.authentication_options(PARTY, challenge=challenge, allow=allow)


@pytest.fixture
def authenticator() -> Authenticator:
    return Authenticator(origin=PARTY.origin)


# --- options ------------------------------------------------------------------------------------


def test_creation_options_are_the_standard_json_form() -> None:
    stored = passkeys.Stored(b"\x01" * 32, b"key", 0, ("internal", "usb"))
    options = _creation(b"\x02" * 64, [stored])
    assert options["rp"] == {"name": "pli", "id": "files.example.org"}
    assert options["user"] == {
        "id": b64url(HANDLE),
        "name": "alice@example.org",
        "displayName": "alice@example.org",
    }
    assert unb64url(options["challenge"]) == b"\x02" * 64
    assert [p["alg"] for p in options["pubKeyCredParams"]] == [-7, -8, -257]
    assert options["timeout"] == 300_000
    assert options["attestation"] == "none"
    assert options["authenticatorSelection"] == {
        "residentKey": "preferred",
        "requireResidentKey": False,
        "userVerification": "preferred",
    }
    assert options["excludeCredentials"] == [
        {"id": b64url(b"\x01" * 32), "type": "public-key", "transports": ["internal", "usb"]}
    ]


def test_request_options_list_the_allowed_credentials() -> None:
    stored = passkeys.Stored(b"\x01" * 32, b"key", 3, ())
    options = _request(b"\x03" * 64, [stored])
    assert options == {
        "challenge": b64url(b"\x03" * 64),
        "timeout": 300_000,
        "rpId": "files.example.org",
        "allowCredentials": [{"id": b64url(b"\x01" * 32), "type": "public-key"}],
        "userVerification": "preferred",
    }


def test_challenges_and_handles_are_random() -> None:
    assert len({passkeys.new_challenge() for _ in range(8)}) == 8
    assert len(passkeys.new_user_handle()) == 64


@pytest.mark.parametrize(
    ("base", "rp_id", "origin"),
    [
        ("https://files.example.org", "files.example.org", "https://files.example.org"),
        ("https://Files.Example.org:443/pli", "files.example.org", "https://files.example.org"),
        ("http://127.0.0.1:8080", "127.0.0.1", "http://127.0.0.1:8080"),
        ("http://localhost:80/", "localhost", "http://localhost"),
        ("https://[::1]:8443", "::1", "https://[::1]:8443"),
    ],
)
def test_the_relying_party_of_a_base_url(base: str, rp_id: str, origin: str) -> None:
    assert passkeys.relying_party(base) == RelyingParty(rp_id=rp_id, origin=origin)


@pytest.mark.parametrize("base", ["http://host:port", "http://", "ftp://example.org", ""])
def test_a_base_url_without_a_host_is_refused(base: str) -> None:
    with pytest.raises(UsageError):
        passkeys.relying_party(base)


# --- registration -------------------------------------------------------------------------------


def test_a_registration_verifies(authenticator: Authenticator) -> None:
    stored = _enrolled(authenticator)
    assert stored.credential_id == authenticator.credential_id
    assert stored.public_key == authenticator.cose_key()
    assert stored.sign_count == 0
    assert stored.transports == ("hybrid", "internal")


def test_user_verification_is_preferred_not_required(authenticator: Authenticator) -> None:
    challenge = passkeys.new_challenge()
    made = authenticator.create(_creation(challenge), flags=UP | AT)
    assert passkeys.verify_registration(made, challenge=challenge, party=PARTY)


def test_unknown_transports_are_dropped(authenticator: Authenticator) -> None:
    challenge = passkeys.new_challenge()
    made = authenticator.create(_creation(challenge))
    made["response"]["transports"] = ["usb", "carrier-pigeon", 7]
    stored = passkeys.verify_registration(made, challenge=challenge, party=PARTY)
    assert stored.transports == ("usb",)


REGISTRATION_FAULTS: dict[str, dict[str, Any]] = {
    "another origin": {"origin": "https://files.example.org.evil.example"},
    "another scheme": {"origin": "http://files.example.org"},
    "another rp id": {"rp_id": "example.org"},
    "another challenge": {"challenge": b64url(b"\x00" * 64)},
    "an assertion's client data": {"client_type": "webauthn.get"},
    "no user presence": {"flags": AT | UV},
    "no attested credential": {"flags": UP | UV},
}


@pytest.mark.parametrize("fault", REGISTRATION_FAULTS)
def test_a_wrong_registration_is_refused(authenticator: Authenticator, fault: str) -> None:
    challenge = passkeys.new_challenge()
    made = authenticator.create(_creation(challenge), **REGISTRATION_FAULTS[fault])
    with pytest.raises(SignatureError) as refused:
        passkeys.verify_registration(made, challenge=challenge, party=PARTY)
    assert "did not verify" in refused.value.message
    assert "PLI_PUBLIC_URL" in refused.value.message  # what an administrator can fix


# --- authentication -----------------------------------------------------------------------------


def test_an_assertion_verifies_and_reports_its_counter(authenticator: Authenticator) -> None:
    stored = _enrolled(authenticator)
    challenge = passkeys.new_challenge()
    answer = authenticator.get(_request(challenge, [stored]))
    claim = passkeys.claim(answer)
    assert claim == passkeys.Claim(authenticator.credential_id, HANDLE)
    asserted = passkeys.verify_authentication(
        answer, challenge=challenge, party=PARTY, public_key=stored.public_key
    )
    assert asserted == passkeys.Assertion(authenticator.credential_id, 1, user_verified=True)


def test_the_counter_is_left_to_the_caller(authenticator: Authenticator) -> None:
    """A counter that did not grow is not refused here: the caller judges it, after the
    signature verified, and records it."""
    stored = _enrolled(authenticator)
    challenge = passkeys.new_challenge()
    answer = authenticator.get(_request(challenge, [stored]), sign_count=0, flags=UP)
    asserted = passkeys.verify_authentication(
        answer, challenge=challenge, party=PARTY, public_key=stored.public_key
    )
    assert (asserted.sign_count, asserted.user_verified) == (0, False)


def _other_key() -> dict[str, Any]:
    return {"signer": ec.generate_private_key(ec.SECP256R1())}


ASSERTION_FAULTS: dict[str, dict[str, Any]] = {
    "another origin": {"origin": "https://evil.example"},
    "another rp id": {"rp_id": "evil.example"},
    "another challenge": {"challenge": b64url(b"\x00" * 64)},
    "a registration's client data": {"client_type": "webauthn.create"},
    "no user presence": {"flags": UV},
    "a bad signature": {},  # _other_key, made per test
}


@pytest.mark.parametrize("fault", ASSERTION_FAULTS)
def test_a_wrong_assertion_is_refused(authenticator: Authenticator, fault: str) -> None:
    stored = _enrolled(authenticator)
    challenge = passkeys.new_challenge()
    changes = ASSERTION_FAULTS[fault] or _other_key()
    answer = authenticator.get(_request(challenge, [stored]), **changes)
    with pytest.raises(SignatureError):
        passkeys.verify_authentication(
            answer, challenge=challenge, party=PARTY, public_key=stored.public_key
        )


def test_an_assertion_checked_with_another_key_is_refused(authenticator: Authenticator) -> None:
    stored = _enrolled(authenticator)
    other = _enrolled(Authenticator(origin=PARTY.origin))
    challenge = passkeys.new_challenge()
    answer = authenticator.get(_request(challenge, [stored]))
    with pytest.raises(SignatureError):
        passkeys.verify_authentication(
            answer, challenge=challenge, party=PARTY, public_key=other.public_key
        )


def test_a_tampered_authenticator_data_is_refused(authenticator: Authenticator) -> None:
    stored = _enrolled(authenticator)
    challenge = passkeys.new_challenge()
    answer = authenticator.get(_request(challenge, [stored]))
    data = bytearray(unb64url(answer["response"]["authenticatorData"]))
    data[-1] ^= 0xFF  # the counter, after signing
    answer["response"]["authenticatorData"] = b64url(bytes(data))
    with pytest.raises(SignatureError):
        passkeys.verify_authentication(
            answer, challenge=challenge, party=PARTY, public_key=stored.public_key
        )


# --- garbage ------------------------------------------------------------------------------------


def _malformed(valid: dict[str, Any], verified: tuple[str, ...]) -> list[dict[str, Any]]:
    """The valid answer, broken in the ways a hostile client might, in what is `verified`
    of its response and in its identity."""
    broken: list[dict[str, Any]] = [{}, {"id": 1}, {"id": "x", "rawId": "x", "response": []}]
    for name in verified:
        for value in (None, 42, "", "!!!not base64!!!", b64url(b"\xff" * 3), ["a"], {"a": 1}):
            copied = copy.deepcopy(valid)
            copied["response"][name] = value
            broken.append(copied)
    wrongs: tuple[object, ...] = (None, 1, "", "zz", {"x": []})
    for field in ("id", "rawId", "type"):
        for wrong in wrongs:
            copied = copy.deepcopy(valid)
            copied[field] = wrong
            broken.append(copied)
    clipped = copy.deepcopy(valid)
    clipped["response"]["clientDataJSON"] = b64url(b'{"type": "webauthn.create"')
    broken.append(clipped)
    return broken


def test_malformed_registrations_are_one_refusal(authenticator: Authenticator) -> None:
    challenge = passkeys.new_challenge()
    valid = authenticator.create(_creation(challenge))
    for broken in _malformed(valid, ("clientDataJSON", "attestationObject")):
        with pytest.raises(SignatureError):
            passkeys.verify_registration(broken, challenge=challenge, party=PARTY)


def test_malformed_assertions_are_one_refusal(authenticator: Authenticator) -> None:
    stored = _enrolled(authenticator)
    challenge = passkeys.new_challenge()
    valid = authenticator.get(_request(challenge, [stored]))
    verified = ("clientDataJSON", "authenticatorData", "signature")

    def check(broken: dict[str, Any]) -> None:
        passkeys.claim(broken)  # as the server does: which credential, then its signature
        passkeys.verify_authentication(
            broken, challenge=challenge, party=PARTY, public_key=stored.public_key
        )

    for broken in _malformed(valid, verified):
        with pytest.raises(SignatureError):
            check(broken)


def test_a_malformed_stored_key_is_a_refusal_too(authenticator: Authenticator) -> None:
    stored = _enrolled(authenticator)
    challenge = passkeys.new_challenge()
    answer = authenticator.get(_request(challenge, [stored]))
    with pytest.raises(SignatureError):
        passkeys.verify_authentication(
            answer, challenge=challenge, party=PARTY, public_key=b"\xa1\x01\x02"
        )


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
CREDENTIAL_KEYS = st.sampled_from(
    ["id", "rawId", "type", "response", "clientDataJSON", "attestationObject", "signature"]
)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    credential=st.dictionaries(CREDENTIAL_KEYS | st.text(max_size=8), JSON, max_size=6),
    response=st.dictionaries(CREDENTIAL_KEYS, JSON | st.binary().map(b64url), max_size=5),
)
def test_any_json_is_answered_with_a_refusal(
    credential: dict[str, Any], response: dict[str, Any]
) -> None:
    credential = {**credential, "type": "public-key", "response": response}
    credential.setdefault("id", "AAAA")
    credential.setdefault("rawId", credential["id"])
    for check in (
        lambda: passkeys.verify_registration(credential, challenge=b"c", party=PARTY),
        lambda: passkeys.claim(credential),
        lambda: passkeys.verify_authentication(
            credential, challenge=b"c", party=PARTY, public_key=b"\xa0"
        ),
    ):
        with pytest.raises(SignatureError):
            check()
