"""Passkeys (WebAuthn Level 3) over py_webauthn: the options a browser is given, and the checks
of what its authenticator answers. Public keys only: a passkey's private key never leaves the
person's authenticator, so the server side may use this module.

What is checked, and why:

- registration ("webauthn.create"): the challenge the server issued, the origin the browser
  saw, the hash of the relying party id, user presence, a supported algorithm (ES256, EdDSA,
  RS256), attestation "none" or one py_webauthn verifies. User verification is preferred, not
  required: a security key without a PIN is still a second factor on top of the password.
- authentication ("webauthn.get"): the same, then the signature over
  authenticatorData || SHA-256(clientDataJSON) with the stored public key.

The signature counter is returned, not judged here: whether a counter that did not grow means
a cloned authenticator is the caller's decision, taken after the signature verified (so that
a forged answer can never make a real passkey look cloned), and recorded there.

Every refusal, whatever py_webauthn or a parser below it raised on whatever input, is one
`SignatureError` with one message: a caller learns that the answer did not verify, never which
check failed; the message says what a person can do about the common causes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pli.errors import SignatureError, UsageError

if TYPE_CHECKING:
    from webauthn.helpers.cose import COSEAlgorithmIdentifier
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

# py_webauthn (and the ASN.1 and X.509 parsers under it, ~5 MiB) is loaded on first use: most
# servers seldom see a passkey, and it would otherwise stay resident from start-up.

RP_NAME = "pli"
TIMEOUT_MS = 300_000  # as long as a challenge lives on the server (5 minutes)
MAX_CREDENTIAL_ID = 1023  # WebAuthn's bound on a credential id, in bytes
_REFUSED = (
    "the passkey's answer did not verify: try again, in a browser opened at this server's "
    "own address (the administrator sets it with PLI_PUBLIC_URL)"
)


@dataclass(frozen=True)
class RelyingParty:
    """Who passkeys are made for: the host name (the RP id) and the web origin browsers
    report, both from the server's public address."""

    rp_id: str
    origin: str


@dataclass(frozen=True)
class Stored:
    """A passkey as the server keeps it."""

    credential_id: bytes
    public_key: bytes  # COSE_Key
    sign_count: int
    transports: tuple[str, ...]


@dataclass(frozen=True)
class Claim:
    """What an assertion says about itself before anything in it is verified: which
    credential made it, for which user handle (when the authenticator tells)."""

    credential_id: bytes
    user_handle: bytes | None


@dataclass(frozen=True)
class Assertion:
    credential_id: bytes
    sign_count: int
    user_verified: bool


def _algorithms() -> list[COSEAlgorithmIdentifier]:
    """In the order offered: the common ES256 first, then EdDSA and RS256 (Windows Hello)."""
    from webauthn.helpers.cose import COSEAlgorithmIdentifier  # noqa: PLC0415

    return [
        COSEAlgorithmIdentifier.ECDSA_SHA_256,
        COSEAlgorithmIdentifier.EDDSA,
        COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256,
    ]


@functools.cache
def _known_transports() -> frozenset[str]:
    from webauthn.helpers.structs import AuthenticatorTransport  # noqa: PLC0415

    return frozenset(t.value for t in AuthenticatorTransport)


def relying_party(base_url: str) -> RelyingParty:
    """The relying party of a server reached at `base_url` (scheme://host[:port][/path]): its
    host name, and its origin as a browser serializes it (default port left out)."""
    parts = urlsplit(base_url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:
        raise UsageError("the request's Host header does not name a host") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise UsageError("the request's Host header does not name a host")
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[parts.scheme]:
        netloc += f":{port}"
    return RelyingParty(rp_id=host, origin=f"{parts.scheme}://{netloc}")


def new_challenge() -> bytes:
    """64 random bytes."""
    from webauthn.helpers import generate_challenge  # noqa: PLC0415

    return generate_challenge()


def new_user_handle() -> bytes:
    """64 random bytes: the user.id passkeys are made for, which identifies no one."""
    from webauthn.helpers import generate_user_handle  # noqa: PLC0415

    return generate_user_handle()


def registration_options(
    party: RelyingParty,
    *,
    user_handle: bytes,
    user_name: str,
    challenge: bytes,
    exclude: Sequence[Stored],
) -> dict[str, Any]:
    """PublicKeyCredentialCreationOptionsJSON for navigator.credentials.create()."""
    import webauthn  # noqa: PLC0415
    from webauthn.helpers.structs import (  # noqa: PLC0415
        AttestationConveyancePreference,
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    options = webauthn.generate_registration_options(
        rp_id=party.rp_id,
        rp_name=RP_NAME,
        user_id=user_handle,
        user_name=user_name,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        attestation=AttestationConveyancePreference.NONE,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.PREFERRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(exclude),
        supported_pub_key_algs=_algorithms(),
    )
    parsed: dict[str, Any] = json.loads(webauthn.options_to_json(options))
    return parsed


def authentication_options(
    party: RelyingParty, *, challenge: bytes, allow: Sequence[Stored]
) -> dict[str, Any]:
    """PublicKeyCredentialRequestOptionsJSON for navigator.credentials.get(), limited to the
    account's own passkeys."""
    import webauthn  # noqa: PLC0415
    from webauthn.helpers.structs import UserVerificationRequirement  # noqa: PLC0415

    options = webauthn.generate_authentication_options(
        rp_id=party.rp_id,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(allow),
        user_verification=UserVerificationRequirement.PREFERRED,
    )
    parsed: dict[str, Any] = json.loads(webauthn.options_to_json(options))
    return parsed


def verify_registration(
    credential: Mapping[str, Any], *, challenge: bytes, party: RelyingParty
) -> Stored:
    """Check a RegistrationResponseJSON against the challenge it must answer; the passkey to
    keep. Raises SignatureError."""
    import webauthn  # noqa: PLC0415

    try:
        verified = webauthn.verify_registration_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=party.rp_id,
            expected_origin=party.origin,
            require_user_presence=True,
            require_user_verification=False,
            supported_pub_key_algs=_algorithms(),
        )
    except Exception as exc:  # anything at all, from any parser below: one refusal
        raise SignatureError(_REFUSED) from exc
    if len(verified.credential_id) > MAX_CREDENTIAL_ID:  # more than a unique index should take
        raise SignatureError(_REFUSED)
    return Stored(
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=_transports(credential),
    )


def claim(credential: Mapping[str, Any]) -> Claim:
    """Which credential an AuthenticationResponseJSON names, to look its public key up.
    Nothing in it is verified yet. Raises SignatureError."""
    from webauthn.helpers.parse_authentication_credential_json import (  # noqa: PLC0415
        parse_authentication_credential_json,
    )

    try:
        parsed = parse_authentication_credential_json(dict(credential))
    except Exception as exc:  # anything at all: one refusal
        raise SignatureError(_REFUSED) from exc
    handle = parsed.response.user_handle
    return Claim(credential_id=parsed.raw_id, user_handle=handle or None)


def verify_authentication(
    credential: Mapping[str, Any],
    *,
    challenge: bytes,
    party: RelyingParty,
    public_key: bytes,
) -> Assertion:
    """Check an AuthenticationResponseJSON made with `public_key` against the challenge it
    must answer. Raises SignatureError. The counter is the caller's to compare (see above)."""
    import webauthn  # noqa: PLC0415

    try:
        verified = webauthn.verify_authentication_response(
            credential=dict(credential),
            expected_challenge=challenge,
            expected_rp_id=party.rp_id,
            expected_origin=party.origin,
            credential_public_key=public_key,
            # Zero turns py_webauthn's own counter check off: it would run before the
            # signature is verified, and without the record a clone deserves.
            credential_current_sign_count=0,
            require_user_verification=False,
        )
    except Exception as exc:  # anything at all, from any parser below: one refusal
        raise SignatureError(_REFUSED) from exc
    return Assertion(
        credential_id=verified.credential_id,
        sign_count=verified.new_sign_count,
        user_verified=verified.user_verified,
    )


def _descriptors(passkeys: Sequence[Stored]) -> list[PublicKeyCredentialDescriptor]:
    from webauthn.helpers.structs import (  # noqa: PLC0415
        AuthenticatorTransport,
        PublicKeyCredentialDescriptor,
    )

    known = _known_transports()
    return [
        PublicKeyCredentialDescriptor(
            id=p.credential_id,
            transports=[AuthenticatorTransport(t) for t in p.transports if t in known] or None,
        )
        for p in passkeys
    ]


def _transports(credential: Mapping[str, Any]) -> tuple[str, ...]:
    """The transports a registration response lists, known ones only: hints for later."""
    response = credential.get("response")
    listed = response.get("transports") if isinstance(response, dict) else None
    if not isinstance(listed, list):
        return ()
    return tuple(sorted({t for t in listed if isinstance(t, str) and t in _known_transports()}))
