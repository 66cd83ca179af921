"""Signed group membership (docs/spec/groups.md).

A group's membership is a hash chain of changes, each signed by a device of one of the group's
administrators as they stood before it:

    change = {"doc": {"kind": "pli/group-change/v1", "group": id, "name": "org/group",
                      "seq": n, "prev": digest of change n-1 ("" for n = 0),
                      "action": "add" | "remove", "email": member, "role": "admin" | "member"
                      (add only), "by": signer's email, "device": signer's device id}, "sig": ...}

Change 0 is the founding administrator adding themselves. Replaying the chain gives the
members; a client that pinned an earlier state checks the chain extends it. The server cannot
add anyone: it holds no administrator's key. Public keys only, except where a caller hands in
its own identity to sign with.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pli.crypto import signing
from pli.crypto.bundle import PublicBundle
from pli.crypto.identity import DeviceIdentity
from pli.errors import IntegrityError, SignatureError, TamperingError, UsageError

CHANGE_KIND = "pli/group-change/v1"
ADMIN, MEMBER = "admin", "member"
ADD, REMOVE = "add", "remove"
MAX_CHANGES = 10_000

_SLUG = r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?"
NAME = re.compile(rf"({_SLUG})/({_SLUG})")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_COMMON = {"kind", "group", "name", "seq", "prev", "action", "email", "by", "device"}

# Finds the signer's public bundle: (email, device id) -> the bundle, proved in the key log by
# the caller; SignatureError if it has none.
SignerKeys = Callable[[str, str], PublicBundle]


def parse_name(text: str) -> tuple[str, str]:
    """(organisation, group) of `org/group` (a leading `group:` allowed); UsageError otherwise."""
    name = text.removeprefix("group:").strip().lower()
    match = NAME.fullmatch(name)
    if match is None:
        raise UsageError(
            f"{text!r} is not a group name: write ORGANISATION/GROUP, e.g. group:ars-idf/veille "
            "(lowercase letters, digits and hyphens)"
        )
    return match.group(1), match.group(2)


def digest(signed: Any) -> str:
    """SHA-256 of the change's stored form, canonical(envelope), in hex: what the next change
    and the key log entry commit to."""
    return hashlib.sha256(signing.canonical_json(signed)).hexdigest()


@dataclass(frozen=True)
class Change:
    group: str
    name: str
    seq: int
    prev: str
    action: str
    email: str
    role: str | None
    by: str
    device: str
    signed: dict[str, Any]

    @property
    def digest(self) -> str:
        return digest(self.signed)


def claimed(signed: Any) -> Change:
    """The change `signed` states, well-formed but not yet checked against its signer's key:
    to find that key. SignatureError if malformed."""
    doc = signed.get("doc") if isinstance(signed, dict) else None
    if not isinstance(doc, dict) or doc.get("kind") != CHANGE_KIND:
        raise SignatureError("malformed group change")
    action = doc.get("action")
    wanted = _COMMON | ({"role"} if action == ADD else set())
    seq = doc.get("seq")
    if (
        set(doc) != wanted
        or action not in (ADD, REMOVE)
        or not isinstance(seq, int)
        or isinstance(seq, bool)
        or not 0 <= seq < MAX_CHANGES
        or not all(isinstance(doc[k], str) for k in wanted - {"seq"})
        or not _HEX32.fullmatch(doc["group"])
        or not _HEX32.fullmatch(doc["device"])
        or NAME.fullmatch(doc["name"]) is None
        or (doc["prev"] != "" if seq == 0 else _HEX64.fullmatch(doc["prev"]) is None)
        or (action == ADD and doc["role"] not in (ADMIN, MEMBER))
        or not _email(doc["email"])
        or not _email(doc["by"])
    ):
        raise SignatureError("malformed group change")
    return Change(
        group=doc["group"],
        name=doc["name"],
        seq=seq,
        prev=doc["prev"],
        action=action,
        email=doc["email"],
        role=doc.get("role"),
        by=doc["by"],
        device=doc["device"],
        signed=signed,
    )


def _email(value: str) -> bool:
    return 0 < len(value) <= 254 and value == value.strip().lower() and "@" in value


@dataclass
class GroupState:
    """A group's membership after its first `seq + 1` changes; `head` is the last one's digest
    and `digests` every change's, in order."""

    group: str
    name: str
    members: dict[str, str] = field(default_factory=dict)  # email -> role
    digests: list[str] = field(default_factory=list)
    founder: str = ""  # who signed change 0

    def apply(self, signed: Any) -> None:
        """Apply the next change, well-formed and allowed, in place (its signature is the
        caller's to check: `replay` does). IntegrityError if the group must refuse it."""
        change = claimed(signed)
        if (change.group, change.name) != (self.group, self.name):
            raise IntegrityError(f"the server mixed a change of another group into {self.name}")
        if change.seq != len(self.digests) or change.prev != self.head:
            raise IntegrityError(
                f"the membership history of group {self.name} is out of order or has a gap "
                f"at change {len(self.digests)}",
                hint="the server may be hiding or replaying changes: tell your administrator",
            )
        _apply(self, change)
        self.digests.append(change.digest)
        if change.seq == 0:
            self.founder = change.by

    @property
    def seq(self) -> int:
        return len(self.digests) - 1

    @property
    def head(self) -> str:
        return self.digests[-1] if self.digests else ""

    def admins(self) -> list[str]:
        return sorted(e for e, role in self.members.items() if role == ADMIN)


def sign_change(
    identity: DeviceIdentity,
    state: GroupState,
    action: str,
    email: str,
    role: str | None = None,
) -> dict[str, Any]:
    """`identity`'s next change to the group in `state`. Checked as a replay would check it,
    so a change the group would refuse is never signed."""
    email = email.strip().lower()
    doc: dict[str, Any] = {
        "kind": CHANGE_KIND,
        "group": state.group,
        "name": state.name,
        "seq": state.seq + 1,
        "prev": state.head,
        "action": action,
        "email": email,
        "by": identity.email,
        "device": identity.device,
    }
    if action == ADD:
        doc["role"] = role or MEMBER
    signed = identity.sign(CHANGE_KIND, doc)
    _apply(GroupState(state.group, state.name, dict(state.members)), claimed(signed))
    return signed


def replay(changes: Sequence[Any], group: str, name: str, signer_keys: SignerKeys) -> GroupState:
    """The membership `changes` make of group `group` named `name`: each change well-formed,
    in sequence, linked to the one before, signed by a device of an administrator of the group
    as it stood before it, and allowed. IntegrityError or SignatureError otherwise. No change
    at all is a group without members, whose founder has not signed its first change yet."""
    state = GroupState(group, name)
    for seq, signed in enumerate(changes):
        change = claimed(signed)
        bundle = signer_keys(change.by, change.device)
        if (bundle.email, bundle.device) != (change.by, change.device):
            raise SignatureError(f"change {seq} of group {name} names another signer")
        signing.verify(signing.public_key(bundle.ed25519), CHANGE_KIND, signed)
        state.apply(signed)
    return state


def _apply(state: GroupState, change: Change) -> None:
    """Apply `change` to `state` in place; IntegrityError if the group must refuse it."""
    members = state.members
    if change.seq == 0:
        if (change.action, change.role, change.email) != (ADD, ADMIN, change.by):
            raise IntegrityError(
                f"group {state.name} does not start with its founding administrator"
            )
    elif members.get(change.by) != ADMIN:
        raise IntegrityError(
            f"{change.by} changed group {state.name} without being one of its administrators"
        )
    if change.action == ADD:
        if members.get(change.email) == change.role:
            raise IntegrityError(f"{change.email} is already a {change.role} of {state.name}")
        if members.get(change.email) == ADMIN and _last_admin(members, change.email):
            raise IntegrityError(f"group {state.name} would be left without an administrator")
        members[change.email] = change.role or MEMBER
        return
    if change.email not in members:
        raise IntegrityError(f"{change.email} is not a member of {state.name}")
    if _last_admin(members, change.email):
        raise IntegrityError(f"group {state.name} would be left without an administrator")
    del members[change.email]


def _last_admin(members: Mapping[str, str], email: str) -> bool:
    return members.get(email) == ADMIN and sum(r == ADMIN for r in members.values()) == 1


def check_extends(state: GroupState, seq: int, head: str, genesis: str) -> None:
    """For a client that pinned change `seq` (digest `head`) and change 0 (digest `genesis`)
    of the group: `state`'s chain must hold both, else the server rewrote the group's history
    or hid its recent changes (TamperingError naming the group)."""
    digests = state.digests
    if not digests or digests[0] != genesis or seq >= len(digests) or digests[seq] != head:
        raise TamperingError(
            f"the membership history of group {state.name} differs from the one this device "
            "saw before: the server rewrote it or hid recent changes",
            hint="send nothing to this group and tell your administrator; keep "
            "groups.json in PLI_HOME as evidence",
        )
