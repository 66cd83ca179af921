"""pli.crypto.devices: approvals and removals one device signs for another of its account."""

from __future__ import annotations

from typing import Any

import pytest

from pli.crypto import devices
from pli.crypto.identity import DeviceIdentity
from pli.crypto.keylog import bundle_digest
from pli.errors import SignatureError

LAPTOP, PHONE = (DeviceIdentity.generate("alice@example.org") for _ in range(2))
OTHER = DeviceIdentity.generate("mallory@example.org")


def test_an_approval_names_the_exact_bundle_and_its_approver() -> None:
    signed = devices.approve(LAPTOP, PHONE.public_bundle())
    approval = devices.check_approval(signed, LAPTOP.public_bundle(), PHONE.public_bundle())
    assert approval.bundle == bundle_digest(PHONE.public_bundle())
    assert (approval.email, approval.device, approval.by) == (
        "alice@example.org",
        PHONE.device,
        LAPTOP.device,
    )
    assert devices.by_of(signed) == LAPTOP.device


def test_a_device_approves_no_other_account_nor_itself() -> None:
    with pytest.raises(SignatureError):
        devices.approve(LAPTOP, OTHER.public_bundle())
    with pytest.raises(SignatureError):
        devices.approve(LAPTOP, LAPTOP.public_bundle())


def _altered(signed: dict[str, Any], member: str, value: str) -> dict[str, Any]:
    return {"doc": {**signed["doc"], member: value}, "sig": signed["sig"]}


@pytest.mark.parametrize("case", ["other-approver", "other-bundle", "altered", "removal"])
def test_an_approval_checked_against_anything_else_fails(case: str) -> None:
    signed = devices.approve(LAPTOP, PHONE.public_bundle())
    approver, bundle = LAPTOP.public_bundle(), PHONE.public_bundle()
    if case == "other-approver":
        approver = PHONE.public_bundle()
    elif case == "other-bundle":
        bundle = DeviceIdentity.generate("alice@example.org").public_bundle()
    elif case == "altered":
        signed = _altered(signed, "device", "0" * 32)
    else:
        signed = devices.remove(LAPTOP, PHONE.device)
    with pytest.raises(SignatureError):
        devices.check_approval(signed, approver, bundle)


def test_a_removal_is_checked_against_its_signer_and_device() -> None:
    signed = devices.remove(LAPTOP, PHONE.device)
    devices.check_removal(signed, LAPTOP.public_bundle(), PHONE.device)
    with pytest.raises(SignatureError):
        devices.check_removal(signed, LAPTOP.public_bundle(), LAPTOP.device)
    with pytest.raises(SignatureError):
        devices.check_removal(signed, PHONE.public_bundle(), PHONE.device)
    with pytest.raises(SignatureError):
        devices.remove(LAPTOP, "not a device id")


@pytest.mark.parametrize("given", [None, {}, {"doc": {"by": "xyz"}}, {"doc": []}, "text"])
def test_by_of_refuses_what_names_no_device(given: object) -> None:
    with pytest.raises(SignatureError):
        devices.by_of(given)
