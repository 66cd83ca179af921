"""What a device signs about another device of its own account (docs/spec/keys.md, "Devices").

    approval = {"doc": {"kind": "pli/device-approval/v1", "email", "device", "bundle", "by"}, "sig"}
    removal  = {"doc": {"kind": "pli/device-removal/v1", "email", "device", "by"}, "sig"}

`by` is the signing device's id and `bundle` the approved bundle's digest
(`keylog.bundle_digest`). An approval lets anyone who trusts device `by` trust the new device
without asking its owner again: the server stores it and hands it out with the bundle, and
clients check it against the keys they pinned. Public keys only, except where a caller hands in
its own identity to sign with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pli.crypto import signing
from pli.crypto.bundle import PublicBundle
from pli.crypto.identity import DeviceIdentity
from pli.crypto.keylog import bundle_digest
from pli.errors import SignatureError

APPROVAL_KIND = "pli/device-approval/v1"
REMOVAL_KIND = "pli/device-removal/v1"

_DEVICE = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class Approval:
    email: str
    device: str
    bundle: str
    by: str
    signed: dict[str, Any]


def approve(identity: DeviceIdentity, bundle: PublicBundle) -> dict[str, Any]:
    """`identity`'s signature that `bundle` is a device of the same account."""
    if bundle.email != identity.email or bundle.device == identity.device:
        raise SignatureError("a device approves only another device of its own account")
    doc = {
        "kind": APPROVAL_KIND,
        "email": bundle.email,
        "device": bundle.device,
        "bundle": bundle_digest(bundle),
        "by": identity.device,
    }
    return identity.sign(APPROVAL_KIND, doc)


def remove(identity: DeviceIdentity, device: str) -> dict[str, Any]:
    """`identity`'s signature that `device` no longer belongs to the account."""
    if not _DEVICE.fullmatch(device):
        raise SignatureError("malformed device id")
    doc = {"kind": REMOVAL_KIND, "email": identity.email, "device": device, "by": identity.device}
    return identity.sign(REMOVAL_KIND, doc)


def by_of(signed: Any) -> str:
    """The id of the device that claims to have signed `signed`, before anything is checked:
    to find the key to check it with."""
    doc = signed.get("doc") if isinstance(signed, dict) else None
    by = doc.get("by") if isinstance(doc, dict) else None
    if not isinstance(by, str) or not _DEVICE.fullmatch(by):
        raise SignatureError("malformed device approval or removal")
    return by


def check_approval(signed: Any, approver: PublicBundle, bundle: PublicBundle) -> Approval:
    """The approval in `signed` if `approver` signed it for exactly `bundle`, both devices of
    one account; SignatureError otherwise."""
    doc = signing.verify(signing.public_key(approver.ed25519), APPROVAL_KIND, signed)
    expected = {
        "kind": APPROVAL_KIND,
        "email": bundle.email,
        "device": bundle.device,
        "bundle": bundle_digest(bundle),
        "by": approver.device,
    }
    if doc != expected or approver.email != bundle.email or approver.device == bundle.device:
        raise SignatureError(
            f"the approval of device {bundle.device} does not match its keys or its approver"
        )
    return Approval(bundle.email, bundle.device, expected["bundle"], approver.device, signed)


def check_removal(signed: Any, remover: PublicBundle, device: str) -> None:
    """SignatureError unless `remover` signed the removal of `device` of its own account."""
    doc = signing.verify(signing.public_key(remover.ed25519), REMOVAL_KIND, signed)
    expected = {
        "kind": REMOVAL_KIND,
        "email": remover.email,
        "device": device,
        "by": remover.device,
    }
    if doc != expected:
        raise SignatureError(f"the removal of device {device} does not match its signer")
