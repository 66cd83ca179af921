"""pli.client.pins: keys pinned on first use; a change is refused until trusted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pli.client.pins import PINS, PinStore
from pli.client.state import Home
from pli.crypto import devices as devices_crypto
from pli.crypto.bundle import PublicBundle
from pli.crypto.identity import DeviceIdentity
from pli.errors import SignatureError, TrustError

EMAIL = "bob@example.org"
_LAPTOP = DeviceIdentity.generate(EMAIL).public_bundle()
_PHONE = DeviceIdentity.generate(EMAIL).public_bundle()
_NEW = DeviceIdentity.generate(EMAIL).public_bundle()


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def pins(home: Home) -> PinStore:
    return PinStore(home)


def devices(pinned: list[PublicBundle]) -> set[str]:
    return {b.device for b in pinned}


def other_keys_of(bundle: PublicBundle) -> PublicBundle:
    """A bundle that keeps `bundle`'s device id with new keys: what a malicious server makes."""
    return DeviceIdentity(
        email=bundle.email,
        device=bundle.device,
        age_identity=DeviceIdentity.generate(bundle.email).age_identity,
        signing_key=DeviceIdentity.generate(bundle.email).signing_key,
        created=bundle.created,
    ).public_bundle()


def test_unknown_correspondent(pins: PinStore) -> None:
    assert pins.get(EMAIL) is None


def test_first_use_pins_unverified(pins: PinStore) -> None:
    first = pins.check(EMAIL, [_LAPTOP, _PHONE])
    assert first.first_use
    assert not first.verified
    assert devices(first.bundles) == {_LAPTOP.device, _PHONE.device}
    stored = pins.get(EMAIL)
    assert stored is not None
    assert devices(stored.bundles) == {_LAPTOP.device, _PHONE.device}
    assert not stored.first_use


def test_same_keys_pass(pins: PinStore) -> None:
    pins.check(EMAIL, [_LAPTOP, _PHONE])
    again = pins.check(EMAIL, [_PHONE, _LAPTOP])  # order does not matter
    assert not again.first_use
    assert devices(again.bundles) == {_LAPTOP.device, _PHONE.device}


def test_pins_persist(home: Home) -> None:
    PinStore(home).check(EMAIL, [_LAPTOP])
    later = PinStore(Home(home.path))
    with pytest.raises(TrustError):
        later.check(EMAIL, [_NEW])
    assert not later.check(EMAIL, [_LAPTOP]).first_use


@pytest.mark.parametrize(
    "served",
    [[_NEW], [_LAPTOP, _NEW], [_LAPTOP, _PHONE, _NEW]],
    ids=["replaced", "one-replaced", "one-added"],
)
def test_changed_keys_are_refused(pins: PinStore, served: list[PublicBundle]) -> None:
    pins.check(EMAIL, [_LAPTOP, _PHONE])
    with pytest.raises(TrustError) as info:
        pins.check(EMAIL, served)
    assert EMAIL in str(info.value)
    assert info.value.hint is not None
    assert f"pli keys trust {EMAIL}" in info.value.hint
    # Refusing does not overwrite what was pinned.
    stored = pins.get(EMAIL)
    assert stored is not None
    assert devices(stored.bundles) == {_LAPTOP.device, _PHONE.device}


# --- changes the account vouched for -------------------------------------------------------

_LAPTOP_ID, _PHONE_ID = (DeviceIdentity.generate(EMAIL) for _ in range(2))
_L, _P = _LAPTOP_ID.public_bundle(), _PHONE_ID.public_bundle()


def test_a_device_approved_by_a_pinned_one_is_accepted(pins: PinStore) -> None:
    pins.verify(EMAIL, [_L])
    approval = devices_crypto.approve(_LAPTOP_ID, _P)
    accepted = pins.check(EMAIL, [_L, _P], {_P.device: approval})
    assert devices(accepted.bundles) == {_L.device, _P.device}
    assert accepted.verified  # vouched for by a verified device: still verified
    assert accepted.changes == (
        f"device {_P.device} of {EMAIL} ({_P.fingerprint}) was added, approved by its device "
        f"{_L.device}",
    )
    assert not pins.check(EMAIL, [_L, _P]).changes  # pinned now


def test_a_chain_of_approvals_from_a_pinned_device_is_accepted(pins: PinStore) -> None:
    tablet = DeviceIdentity.generate(EMAIL).public_bundle()
    pins.check(EMAIL, [_L])
    approvals = {
        tablet.device: devices_crypto.approve(_PHONE_ID, tablet),  # listed before its approver
        _P.device: devices_crypto.approve(_LAPTOP_ID, _P),
    }
    accepted = pins.check(EMAIL, [tablet, _P, _L], approvals)
    assert len(accepted.changes) == 2


@pytest.mark.parametrize("flaw", ["none", "by-itself", "by-unpinned", "other-bundle", "altered"])
def test_an_unproved_addition_is_refused(pins: PinStore, flaw: str) -> None:
    pins.check(EMAIL, [_L])
    outsider = DeviceIdentity.generate(EMAIL)
    approval: dict[str, Any] | None = {
        "none": None,
        "by-itself": None,
        "by-unpinned": devices_crypto.approve(outsider, _P),
        "other-bundle": devices_crypto.approve(_LAPTOP_ID, _NEW),
        "altered": devices_crypto.approve(_LAPTOP_ID, _P),
    }[flaw]
    if flaw == "by-itself":
        approval = _PHONE_ID.sign(
            devices_crypto.APPROVAL_KIND,
            {**devices_crypto.approve(_LAPTOP_ID, _P)["doc"], "by": _P.device},
        )
    if flaw == "altered" and approval is not None:
        sig = approval["sig"]
        approval = {**approval, "sig": ("B" if sig[0] == "A" else "A") + sig[1:]}
    given = {_P.device: approval} if approval is not None else {}
    with pytest.raises(TrustError):
        pins.check(EMAIL, [_L, _P], given)
    stored = pins.get(EMAIL)
    assert stored is not None
    assert devices(stored.bundles) == {_L.device}


def test_a_removal_is_accepted_and_said(pins: PinStore) -> None:
    pins.verify(EMAIL, [_LAPTOP, _PHONE])
    accepted = pins.check(EMAIL, [_LAPTOP])
    assert accepted.verified
    assert accepted.changes == (f"device {_PHONE.device} of {EMAIL} was removed",)
    with pytest.raises(TrustError):  # and it does not come back on its own
        pins.check(EMAIL, [_LAPTOP, _PHONE])


def test_a_new_age_key_on_the_same_device_is_a_change(pins: PinStore) -> None:
    pins.check(EMAIL, [_LAPTOP])
    # Same device id, another key: what a malicious server would try.
    with pytest.raises(TrustError):
        pins.check(EMAIL, [other_keys_of(_LAPTOP)])


def test_no_keys_at_all(pins: PinStore) -> None:
    with pytest.raises(TrustError):
        pins.check(EMAIL, [])
    assert pins.get(EMAIL) is None


def test_trust_replaces_the_pin(pins: PinStore) -> None:
    pins.check(EMAIL, [_LAPTOP])
    before = pins.trust(EMAIL, [_NEW])
    assert before is not None
    assert devices(before.bundles) == {_LAPTOP.device}
    accepted = pins.check(EMAIL, [_NEW])
    assert not accepted.first_use
    assert devices(accepted.bundles) == {_NEW.device}
    with pytest.raises(TrustError):
        pins.check(EMAIL, [_LAPTOP])


def test_trust_without_a_previous_pin(pins: PinStore) -> None:
    assert pins.trust(EMAIL, [_LAPTOP]) is None
    assert not pins.check(EMAIL, [_LAPTOP]).first_use


def test_correspondents_are_pinned_separately(pins: PinStore) -> None:
    carol = DeviceIdentity.generate("carol@example.org").public_bundle()
    pins.check(EMAIL, [_LAPTOP])
    assert pins.check("carol@example.org", [carol]).first_use
    assert not pins.check(EMAIL, [_LAPTOP]).first_use
    with pytest.raises(TrustError):
        pins.check("carol@example.org", [_LAPTOP])


def test_pin_file_is_private(home: Home, pins: PinStore) -> None:
    pins.check(EMAIL, [_LAPTOP])
    assert (home.path / PINS).stat().st_mode & 0o777 == 0o600


def test_tampered_pin_file_is_refused(home: Home, pins: PinStore) -> None:
    pins.check(EMAIL, [_LAPTOP])
    data = json.loads((home.path / PINS).read_text())
    data[EMAIL]["devices"][0]["doc"]["age"] = _NEW.age  # someone edits the file
    (home.path / PINS).write_text(json.dumps(data))
    with pytest.raises(SignatureError):
        pins.get(EMAIL)


def test_verify_marks_the_pin(pins: PinStore) -> None:
    pins.check(EMAIL, [_LAPTOP, _PHONE])
    before = pins.verify(EMAIL, [_PHONE, _LAPTOP])
    assert before is not None
    assert not before.verified
    checked = pins.check(EMAIL, [_LAPTOP, _PHONE])
    assert checked.verified
    assert [(p.email, p.verified) for p in pins.all()] == [(EMAIL, True)]


@pytest.mark.parametrize(
    "served",
    [[_NEW], [_LAPTOP, _NEW], [_LAPTOP, _PHONE, _NEW]],
    ids=["replaced", "one-replaced", "one-added"],
)
def test_a_change_of_verified_keys_is_a_hard_stop(
    pins: PinStore, served: list[PublicBundle]
) -> None:
    pins.verify(EMAIL, [_LAPTOP, _PHONE])
    with pytest.raises(TrustError) as info:
        pins.check(EMAIL, served)
    message = str(info.value)
    assert EMAIL in message
    assert "verified" in message
    for bundle in [_LAPTOP, _PHONE]:
        assert bundle.fingerprint in message.split("; new ", maxsplit=1)[0]
    for bundle in served:
        assert bundle.fingerprint in message.split("; new ")[1]
    assert info.value.hint is not None
    assert f"pli keys verify {EMAIL}" in info.value.hint
    # `pli keys trust` does not lift it either.
    with pytest.raises(TrustError):
        pins.trust(EMAIL, served)
    stored = pins.get(EMAIL)
    assert stored is not None
    assert stored.verified
    assert devices(stored.bundles) == {_LAPTOP.device, _PHONE.device}


def test_trusting_unchanged_verified_keys_keeps_them_verified(pins: PinStore) -> None:
    pins.verify(EMAIL, [_LAPTOP])
    pins.trust(EMAIL, [_LAPTOP])
    assert pins.check(EMAIL, [_LAPTOP]).verified


def test_verifying_new_keys_replaces_the_pin(pins: PinStore) -> None:
    pins.verify(EMAIL, [_LAPTOP])
    pins.verify(EMAIL, [_NEW])
    assert pins.check(EMAIL, [_NEW]).verified
    with pytest.raises(TrustError):
        pins.check(EMAIL, [_LAPTOP])


def test_nothing_to_verify(pins: PinStore) -> None:
    with pytest.raises(TrustError):
        pins.verify(EMAIL, [])
    assert pins.all() == []


def test_a_second_bundle_under_a_pinned_device_id_is_refused(pins: PinStore) -> None:
    """The pinned bundle and, beside it, one with the same device id and other keys: no device
    change, and no approval makes it one."""
    pins.verify(EMAIL, [_L])
    with pytest.raises(TrustError):
        pins.check(EMAIL, [_L, other_keys_of(_L)], {})
    stored = pins.get(EMAIL)
    assert stored is not None
    assert [b.signed for b in stored.bundles] == [_L.signed]
