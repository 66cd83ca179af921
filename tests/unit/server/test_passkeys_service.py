"""Passkeys as a second factor (pli.server.auth.passkeys), on each backend: single-use
challenges bound to an account and a purpose, their expiry, counters that must grow, and the
recovery codes an account holds with its first second factor and loses with its last."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any, Literal

import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from pli.crypto.passkeys import RelyingParty
from pli.errors import (
    AuthError,
    ConflictError,
    GoneError,
    NotFoundError,
    SignatureError,
    UsageError,
)
from pli.server.auth import passkeys, recovery, totp
from pli.store import models
from tests.passkey_authenticator import Authenticator, b64url
from tests.unit.server.exchange import NOW, user

PARTY = RelyingParty(rp_id="files.example.org", origin="https://files.example.org")
KEY = b"k" * 32  # the server key TOTP seeds are sealed under


def _enrol(
    session: Session, owner: models.User, authenticator: Authenticator, name: str = "laptop"
) -> tuple[models.Passkey, list[str]]:
    challenge_id, options = passkeys.registration_options(session, owner, party=PARTY, now=NOW)
    made = authenticator.create(options)
    return passkeys.register(session, owner, challenge_id, made, name, party=PARTY, now=NOW)


def _assert(
    session: Session,
    owner: models.User,
    authenticator: Authenticator,
    *,
    purpose: str = "login",
    answerer: models.User | None = None,
    **changes: Any,
) -> models.Passkey:
    """An assertion by `authenticator` to a challenge made for `owner`, checked for
    `answerer` (the owner unless said otherwise)."""
    kind: Literal["login", "confirm"] = "login" if purpose == "login" else "confirm"
    challenge_id, options = passkeys.assertion_options(
        session, owner, purpose=kind, party=PARTY, now=NOW
    )
    answer = authenticator.get(options, **changes)
    return passkeys.verify_assertion(
        session,
        answerer or owner,
        challenge_id,
        answer,
        purpose=kind,
        origin=PARTY.origin,
        now=NOW,
    )


def _events(session: Session) -> list[tuple[str, str | None, dict[str, object]]]:
    rows = session.scalars(select(models.AuditEntry).order_by(models.AuditEntry.seq))
    return [(r.event, r.actor, json.loads(r.details)) for r in rows]


@pytest.fixture
def key() -> Authenticator:
    return Authenticator(origin=PARTY.origin)


def test_a_first_passkey_comes_with_recovery_codes(database: Session, key: Authenticator) -> None:
    alice = user(database, "alice")
    row, codes = _enrol(database, alice, key)
    assert (row.name, row.rp_id, row.sign_count) == ("laptop", "files.example.org", 0)
    assert row.credential_id == key.credential_id
    assert row.transports == "hybrid internal"
    assert len(codes) == 10
    assert recovery.left(alice) == 10
    assert recovery.methods(database, alice) == ["passkey"]
    assert _events(database)[-1] == (
        "auth.second_factor.changed",
        "alice@example.org",
        {"passkey": "added", "name": "laptop"},
    )
    # A second one: the account keeps the codes it has.
    second, more = _enrol(database, alice, Authenticator(origin=PARTY.origin), "phone")
    assert more == []
    assert {p.id for p in passkeys.of_user(database, alice)} == {row.id, second.id}


def test_the_user_handle_is_random_and_stable(database: Session, key: Authenticator) -> None:
    alice = user(database, "alice")
    _, first = passkeys.registration_options(database, alice, party=PARTY, now=NOW)
    _enrol(database, alice, key)
    _, again = passkeys.registration_options(database, alice, party=PARTY, now=NOW)
    assert first["user"] == again["user"]
    assert first["user"]["id"] == b64url(alice.passkey_handle or b"")
    assert len(alice.passkey_handle or b"") == 64
    # Enrolled passkeys are excluded, so an authenticator is not registered twice.
    assert again["excludeCredentials"] == [
        {
            "id": b64url(key.credential_id),
            "type": "public-key",
            "transports": ["hybrid", "internal"],
        }
    ]


def test_one_credential_is_registered_once(database: Session, key: Authenticator) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    _enrol(database, alice, key)
    with pytest.raises(ConflictError):
        _enrol(database, bob, key)
    assert passkeys.of_user(database, bob) == []
    assert recovery.left(bob) == 0


@pytest.mark.parametrize("name", ["   ", "tab\there"])
def test_a_passkey_needs_a_printable_name(database: Session, key: Authenticator, name: str) -> None:
    with pytest.raises(UsageError):
        _enrol(database, user(database, "alice"), key, name)


def test_a_registration_challenge_works_once(database: Session, key: Authenticator) -> None:
    alice = user(database, "alice")
    challenge_id, options = passkeys.registration_options(database, alice, party=PARTY, now=NOW)
    made = key.create(options)
    passkeys.register(database, alice, challenge_id, made, "a", party=PARTY, now=NOW)
    again = Authenticator(origin=PARTY.origin).create(options)
    with pytest.raises(GoneError, match="expired or was already used"):
        passkeys.register(database, alice, challenge_id, again, "b", party=PARTY, now=NOW)


def test_a_failed_attempt_spends_the_challenge(database: Session, key: Authenticator) -> None:
    alice = user(database, "alice")
    challenge_id, options = passkeys.registration_options(database, alice, party=PARTY, now=NOW)
    wrong = key.create(options, origin="https://evil.example")
    with pytest.raises(SignatureError, match="did not verify"):
        passkeys.register(database, alice, challenge_id, wrong, "a", party=PARTY, now=NOW)
    with pytest.raises(GoneError):
        passkeys.register(
            database, alice, challenge_id, key.create(options), "a", party=PARTY, now=NOW
        )


def test_challenges_expire_after_five_minutes(database: Session, key: Authenticator) -> None:
    alice = user(database, "alice")
    challenge_id, options = passkeys.registration_options(database, alice, party=PARTY, now=NOW)
    late = NOW + timedelta(minutes=5)
    with pytest.raises(GoneError):
        passkeys.register(
            database, alice, challenge_id, key.create(options), "a", party=PARTY, now=late
        )
    _enrol(database, alice, key)
    challenge_id, options = passkeys.assertion_options(
        database, alice, purpose="login", party=PARTY, now=NOW
    )
    with pytest.raises(AuthError, match="expired"):
        passkeys.verify_assertion(
            database,
            alice,
            challenge_id,
            key.get(options),
            purpose="login",
            origin=PARTY.origin,
            now=late + timedelta(seconds=1),
        )


def test_expired_challenges_are_dropped_and_live_ones_capped(database: Session) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    passkeys.registration_options(database, bob, party=PARTY, now=NOW)
    later = NOW + timedelta(minutes=6)
    made = [
        passkeys.registration_options(
            database, alice, party=PARTY, now=later + timedelta(seconds=i)
        )[0]
        for i in range(passkeys.LIVE_CHALLENGES + 2)
    ]
    left = set(database.scalars(select(models.PasskeyChallenge.id)))
    assert left == set(made[-passkeys.LIVE_CHALLENGES :])  # bob's expired; alice's newest


def test_an_assertion_logs_in_once(database: Session, key: Authenticator) -> None:
    alice = user(database, "alice")
    row, _ = _enrol(database, alice, key)
    assert _assert(database, alice, key).id == row.id
    assert (row.sign_count, row.last_used_at) == (1, NOW)
    stored = database.get(models.Passkey, row.id)
    assert stored is not None
    assert stored.sign_count == 1
    # The same answer again: its challenge is spent.
    challenge_id, options = passkeys.assertion_options(
        database, alice, purpose="login", party=PARTY, now=NOW
    )
    answer = key.get(options)

    def check() -> models.Passkey:
        return passkeys.verify_assertion(
            database, alice, challenge_id, answer, purpose="login", origin=PARTY.origin, now=NOW
        )

    check()
    with pytest.raises(AuthError, match="already used"):
        check()


def test_a_challenge_serves_its_purpose_only(database: Session, key: Authenticator) -> None:
    alice = user(database, "alice")
    _enrol(database, alice, key)
    challenge_id, options = passkeys.assertion_options(
        database, alice, purpose="login", party=PARTY, now=NOW
    )
    with pytest.raises(AuthError, match="expired or was already used"):
        passkeys.verify_assertion(
            database,
            alice,
            challenge_id,
            key.get(options),
            purpose="confirm",
            origin=PARTY.origin,
            now=NOW,
        )
    register_id, creation = passkeys.registration_options(database, alice, party=PARTY, now=NOW)
    with pytest.raises(AuthError):
        passkeys.verify_assertion(
            database,
            alice,
            register_id,
            key.get({"challenge": creation["challenge"], "rpId": PARTY.rp_id}),
            purpose="login",
            origin=PARTY.origin,
            now=NOW,
        )


def test_a_challenge_serves_its_account_only(database: Session, key: Authenticator) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    _enrol(database, alice, key)
    bobs = Authenticator(origin=PARTY.origin)
    _enrol(database, bob, bobs)
    # Bob's challenge, answered by Bob's passkey, presented as Alice's login.
    with pytest.raises(AuthError, match="expired or was already used"):
        _assert(database, bob, bobs, answerer=alice)


def test_another_accounts_passkey_is_refused(database: Session, key: Authenticator) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    _enrol(database, alice, key)
    mallory = Authenticator(origin=PARTY.origin)
    _enrol(database, bob, mallory)
    challenge_id, options = passkeys.assertion_options(
        database, alice, purpose="login", party=PARTY, now=NOW
    )
    with pytest.raises(AuthError, match="not one of this account's"):
        passkeys.verify_assertion(
            database,
            alice,
            challenge_id,
            mallory.get(options),
            purpose="login",
            origin=PARTY.origin,
            now=NOW,
        )


def test_a_user_handle_of_another_account_is_refused(database: Session, key: Authenticator) -> None:
    alice = user(database, "alice")
    _enrol(database, alice, key)
    key.user_handle = b"someone else" * 4
    with pytest.raises(AuthError, match="not one of this account's"):
        _assert(database, alice, key)


def test_an_assertion_that_does_not_verify_is_an_auth_error(
    database: Session, key: Authenticator
) -> None:
    alice = user(database, "alice")
    _enrol(database, alice, key)
    with pytest.raises(AuthError, match="did not verify"):
        _assert(database, alice, key, origin="https://evil.example")
    with pytest.raises(AuthError, match="did not verify"):
        passkeys.verify_assertion(
            database,
            alice,
            passkeys.assertion_options(database, alice, purpose="login", party=PARTY, now=NOW)[0],
            {"garbage": True},
            purpose="login",
            origin=PARTY.origin,
            now=NOW,
        )


def test_a_counter_that_did_not_grow_is_refused(database: Session, key: Authenticator) -> None:
    alice = user(database, "alice")
    row, _ = _enrol(database, alice, key)
    _assert(database, alice, key, sign_count=7)
    for replayed in (7, 3):
        with pytest.raises(AuthError, match="copied"):
            _assert(database, alice, key, sign_count=replayed)
    stored = database.get(models.Passkey, row.id)
    assert stored is not None
    assert stored.sign_count == 7
    assert _assert(database, alice, key, sign_count=8).sign_count == 8
    # Zero after a counter was seen is a regression too.
    with pytest.raises(AuthError, match="copied"):
        _assert(database, alice, key, sign_count=0)


def test_authenticators_without_a_counter_keep_working(database: Session) -> None:
    alice = user(database, "alice")
    synced = Authenticator(origin=PARTY.origin, counter_step=0)
    _enrol(database, alice, synced)
    for _ in range(3):
        assert _assert(database, alice, synced).sign_count == 0


def test_assertion_options_need_a_passkey(database: Session) -> None:
    with pytest.raises(ConflictError, match="no passkey"):
        passkeys.assertion_options(
            database, user(database, "alice"), purpose="login", party=PARTY, now=NOW
        )


def test_the_options_allow_the_accounts_passkeys(database: Session, key: Authenticator) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    _enrol(database, alice, key)
    _enrol(database, bob, Authenticator(origin=PARTY.origin))
    _, options = passkeys.assertion_options(
        database, alice, purpose="confirm", party=PARTY, now=NOW
    )
    assert options["allowCredentials"] == [
        {
            "id": b64url(key.credential_id),
            "type": "public-key",
            "transports": ["hybrid", "internal"],
        }
    ]
    assert options["rpId"] == PARTY.rp_id


def test_a_passkey_is_found_by_its_owner_only(database: Session, key: Authenticator) -> None:
    alice, bob = user(database, "alice"), user(database, "bob")
    row, _ = _enrol(database, alice, key)
    assert passkeys.find(database, alice, row.id).id == row.id
    with pytest.raises(NotFoundError):
        passkeys.find(database, bob, row.id)


# --- recovery codes, across second factors -----------------------------------------------------


def _enable_totp(session: Session, owner: models.User) -> tuple[pyotp.TOTP, list[str]]:
    seed, _ = totp.begin(session, owner, key=KEY)
    code = pyotp.TOTP(seed)
    return code, totp.confirm(session, owner, code.at(NOW), key=KEY, now=NOW)


def test_recovery_codes_belong_to_the_second_factor_as_a_whole(
    database: Session, key: Authenticator
) -> None:
    alice = user(database, "alice")
    code, codes = _enable_totp(database, alice)
    assert len(codes) == 10
    row, more = _enrol(database, alice, key)  # TOTP came first: the codes stay as they are
    assert more == []
    assert recovery.methods(database, alice) == ["totp", "passkey"]
    # TOTP off while a passkey remains: the codes stay.
    totp.disable(database, alice, code.at(NOW + timedelta(seconds=30)), key=KEY, now=NOW)
    assert recovery.left(alice) == 10
    assert totp.verify(database, alice, codes[0], key=KEY, now=NOW) == "recovery"
    assert recovery.left(alice) == 9
    # The last factor goes: so do the codes.
    passkeys.remove(database, alice, row, now=NOW)
    assert recovery.methods(database, alice) == []
    assert alice.recovery_codes is None
    assert _events(database)[-1][2] == {"passkey": "removed", "name": "laptop"}


def test_totp_can_join_a_passkey(database: Session, key: Authenticator) -> None:
    alice = user(database, "alice")
    row, codes = _enrol(database, alice, key)
    code, more = _enable_totp(database, alice)
    assert more == []
    assert recovery.left(alice) == 10
    with pytest.raises(ConflictError, match="already enabled"):
        totp.begin(database, alice, key=KEY)
    # Removing the passkey leaves TOTP, and the codes with it.
    passkeys.remove(database, alice, row, now=NOW)
    assert recovery.methods(database, alice) == ["totp"]
    assert totp.verify(database, alice, codes[1], key=KEY, now=NOW) == "recovery"
    assert totp.verify(database, alice, code.at(NOW + timedelta(seconds=30)), key=KEY, now=NOW) == (
        "totp"
    )


def test_a_passkey_only_account_takes_recovery_codes_not_totp(
    database: Session, key: Authenticator
) -> None:
    alice = user(database, "alice")
    _, codes = _enrol(database, alice, key)
    # A seed that was never confirmed proves nothing.
    seed, _ = totp.begin(database, alice, key=KEY)
    with pytest.raises(AuthError, match="wrong one-time code"):
        totp.verify(database, alice, pyotp.TOTP(seed).at(NOW), key=KEY, now=NOW)
    assert totp.verify(database, alice, codes[0].lower(), key=KEY, now=NOW) == "recovery"
    with pytest.raises(AuthError, match="wrong one-time code"):
        totp.verify(database, alice, codes[0], key=KEY, now=NOW)
    with pytest.raises(AuthError, match="wrong one-time code"):
        totp.verify(database, alice, "ÉCOLE-ÉTÉ", key=KEY, now=NOW)
