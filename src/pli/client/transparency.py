"""What a client keeps of the server's key log (docs/spec/key-log.md, "What a client stores and
checks"), in PLI_HOME/key-log.json:

    {"key": b64, "log": id, "head": one-line signed head, "audit": {"size": n, "hashes": [hex]}}

The server's key and log id are pinned at the first contact (or given by the user at login);
the head is the latest one verified; `audit` is the frontier `pli keys audit` reached. A fork
is kept as evidence in key-log-evidence.jsonl, and from then on no key from that server is
used until a person has looked and removed the file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pli.client.state import Home
from pli.crypto import groups, keylog, merkle
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.errors import ConfigError, CryptoError, IntegrityError, SignatureError, TamperingError

_T = TypeVar("_T")

STATE = "key-log.json"
EVIDENCE = "key-log-evidence.jsonl"


class LogStore:
    def __init__(self, home: Home) -> None:
        self._home = home

    def _state(self) -> dict[str, Any]:
        data = self._home.read_json(STATE)
        return data if isinstance(data, dict) else {}

    def _save(self, state: dict[str, Any]) -> None:
        self._home.write_json(STATE, state)

    def pinned_key(self) -> str | None:
        key = self._state().get("key")
        return key if isinstance(key, str) else None

    def pin(self, key_b64: str) -> None:
        """Pin the server's key (and the log id it names), at login. Another key than the one
        pinned is refused: a server that changed its key is indistinguishable from another."""
        pinned = self.pinned_key()
        if pinned is not None and pinned != key_b64:
            raise TamperingError(
                f"the server's key log is signed with {key_b64}, not with the key {pinned} "
                "this device pinned",
                hint=f"ask your administrator whether the server's key changed; if it did, "
                f"remove {self._home.path / STATE} and log in again",
            )
        if pinned is None:
            self._save({"key": key_b64, "log": keylog.log_id(key_b64)})

    def head(self) -> keylog.TreeHead | None:
        state = self._state()
        text, key = state.get("head"), state.get("key")
        if not isinstance(text, str) or not isinstance(key, str):
            return None
        return keylog.TreeHead.from_json(text, key, keylog.log_id(key))

    def accept(self, signed: Any, consistency: Sequence[bytes] | None) -> keylog.TreeHead:
        """Verify a signed head the server just gave, against the pinned key (pinned now at a
        first contact), and that it is consistent with the head kept; keep the newer one.
        A fork is kept as evidence and raised as a TamperingError."""
        self._refuse_after_fork()
        key = claimed_member(signed, "key", str)
        self.pin(key)
        seen = keylog.TreeHead.from_signed(signed, key, keylog.log_id(key))
        trusted = self.head()
        try:
            kept = keylog.advance(trusted, seen, consistency or [])
        except TamperingError:
            if trusted is not None:  # always: a first head cannot fork
                self._keep_evidence(trusted, seen)
            raise
        if kept is not trusted:
            state = self._state()
            state["head"] = kept.to_json()
            self._save(state)
        return seen

    def frontier(self) -> merkle.Frontier:
        audit = self._state().get("audit")
        if not isinstance(audit, dict):
            return merkle.Frontier()
        try:
            return merkle.Frontier(audit["size"], [bytes.fromhex(h) for h in audit["hashes"]])
        except (KeyError, TypeError, ValueError, IntegrityError) as exc:
            raise ConfigError(
                f"{self._home.path / STATE} is corrupted",
                hint="remove its audit member: the next audit reads the whole log again",
            ) from exc

    def save_frontier(self, frontier: merkle.Frontier) -> None:
        state = self._state()
        state["audit"] = {"size": frontier.size, "hashes": [h.hex() for h in frontier.hashes]}
        self._save(state)

    def _keep_evidence(self, first: keylog.TreeHead, second: keylog.TreeHead) -> None:
        line = json.dumps({"heads": [first.signed(), second.signed()]}, sort_keys=True)
        self._home.append(EVIDENCE, line.encode("utf-8") + b"\n")

    def _refuse_after_fork(self) -> None:
        if self._home.read(EVIDENCE) is not None:
            raise TamperingError(
                "this server's key log forked earlier: no key from it is used until that is "
                "resolved",
                hint=f"give {self._home.path / EVIDENCE} (two signed tree heads that cannot both "
                "be true) to your administrator; remove it once they have looked",
            )


def claimed_member(signed: Any, name: str, kind: type[_T]) -> _T:
    """A member of a signed tree head's document before its signature is checked: to find
    the key to check it with, or the size to ask a proof for."""
    doc = signed.get("doc") if isinstance(signed, dict) else None
    value = doc.get(name) if isinstance(doc, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SignatureError("the server sent a malformed key log tree head")
    return value


def hashes(values: Any, what: str) -> list[bytes]:
    """A proof as the server sends it (hex strings), as bytes; IntegrityError if malformed."""
    try:
        return [bytes.fromhex(v) for v in values]
    except (TypeError, ValueError) as exc:
        raise IntegrityError(f"the server sent a malformed {what}") from exc


@dataclass(frozen=True)
class Offered:
    """The keys the server hands out for an account, each one proved in the key log, and the
    signed approvals of those that another of its devices vouched for (device id -> approval)."""

    email: str
    bundles: list[PublicBundle]
    approvals: dict[str, dict[str, Any]]


def checked_keys(store: LogStore, email: str, answer: Any) -> Offered:
    """Check the server's answer to `/users/{email}/devices`: every bundle self-signed, of
    `email`, and proved to be in the key log by a head consistent with the one kept."""
    try:
        bundles = [parse_bundle(b) for b in answer["devices"]]
        approvals, log = answer["approvals"], answer["log"]
        proofs, consistency, signed_head = log["proofs"], log["consistency"], log["head"]
    except (CryptoError, KeyError, TypeError) as exc:
        raise SignatureError(f"the server sent invalid keys for {email}") from exc
    if len({b.device for b in bundles}) != len(bundles):
        raise SignatureError(f"the server listed a device of {email} twice")
    # Against the address asked for, not the one the server's answer states.
    if any(b.email != email for b in bundles):
        raise SignatureError(f"the server sent keys of another account for {email}")
    if not isinstance(proofs, list) or not isinstance(approvals, list):
        raise IntegrityError(f"the server sent no key log proofs for {email}'s keys")
    if len(proofs) != len(bundles) or len(approvals) != len(bundles):
        raise IntegrityError(f"the server sent no key log proofs for {email}'s keys")
    proof = None if consistency is None else hashes(consistency, "key log consistency proof")
    head = store.accept(signed_head, proof)
    for bundle, item in zip(bundles, proofs, strict=True):
        _check_logged(head, bundle, item)
    return Offered(
        email,
        bundles,
        {b.device: a for b, a in zip(bundles, approvals, strict=True) if isinstance(a, dict)},
    )


def _check_logged(head: keylog.TreeHead, bundle: PublicBundle, item: Any) -> int:
    """`item` proves that the entry which made `bundle`'s device active is in the log; its
    index."""
    missing = IntegrityError(
        f"the key log does not hold the keys of device {bundle.device} of {bundle.email}",
        hint="Do not use this key: the server may be handing out a key its owner never "
        "published. Retry later; if it persists, check the key's fingerprint with its owner.",
    )
    index, entry, path = _proved_entry(item, missing)
    if entry.event not in {keylog.Event.DEVICE_PUBLISHED, keylog.Event.DEVICE_APPROVED} or (
        entry.email,
        entry.device,
        entry.bundle,
    ) != (bundle.email, bundle.device, keylog.bundle_digest(bundle)):
        raise missing
    keylog.check_inclusion(head, entry, index, path)
    return index


def _proved_entry(item: Any, missing: IntegrityError) -> tuple[int, keylog.Entry, list[bytes]]:
    """(index, entry, inclusion proof) of a proof item `{index, leaf, path}`; `missing` if it
    is malformed."""
    try:
        index, leaf, path = item["index"], item["leaf"], item["path"]
        entry = keylog.Entry.decode(leaf.encode("utf-8"))
    except (KeyError, TypeError, AttributeError, IntegrityError) as exc:
        raise missing from exc
    if not isinstance(index, int) or isinstance(index, bool):
        raise missing
    return index, entry, hashes(path, "key log inclusion proof")


@dataclass(frozen=True)
class Signature:
    """Who signed one change of a group, and where the key log put the two: the entry that
    made the signing device active, and the change's own entry."""

    change: groups.Change
    bundle: PublicBundle
    activated: int
    logged: int


def checked_group(
    store: LogStore, name: str, answer: Any
) -> tuple[groups.GroupState, list[Signature]]:
    """Check the server's answer to `/groups/{org}/{group}` and replay it: every signing
    device and every change proved in the key log by a head consistent with the one kept,
    and the history valid (docs/spec/groups.md). The members are those the replay gives;
    whether each signer is one the client trusts is for its caller to check."""
    try:
        group_id, changes, signers = answer["id"], answer["changes"], answer["signers"]
        entries, log = answer["entries"], answer["log"]
        signed_head, consistency = log["head"], log["consistency"]
        named = answer["name"]
    except (KeyError, TypeError) as exc:
        raise SignatureError(f"the server sent an invalid answer for group {name}") from exc
    if named != name or not isinstance(group_id, str):
        raise IntegrityError(f"the server answered with another group than {name}")
    if (
        not isinstance(changes, list)
        or not isinstance(entries, list)
        or len(entries) != len(changes)
    ):
        raise IntegrityError(f"the server sent no key log proofs for group {name}'s history")
    proof = None if consistency is None else hashes(consistency, "key log consistency proof")
    head = store.accept(signed_head, proof)
    keys = _proved_signers(head, signers, name)

    def signer_keys(email: str, device: str) -> PublicBundle:
        if (email, device) not in keys:
            raise SignatureError(
                f"the server did not prove the keys of device {device} of {email}, which "
                f"signed a change of group {name}"
            )
        return keys[(email, device)][0]

    state = groups.replay(changes, group_id, name, signer_keys)
    signatures = []
    for signed, item in zip(changes, entries, strict=True):
        change = groups.claimed(signed)
        bundle, activated = keys[(change.by, change.device)]
        logged = _check_change_logged(head, change, item)
        signatures.append(Signature(change, bundle, activated, logged))
    return state, signatures


def _proved_signers(
    head: keylog.TreeHead, signers: Any, name: str
) -> dict[tuple[str, str], tuple[PublicBundle, int]]:
    """(email, device) -> the signing device's bundle and the index of the key log entry that
    made it active, each proved."""
    if not isinstance(signers, list):
        raise SignatureError(f"the server sent invalid signers for group {name}")
    keys = {}
    for item in signers:
        try:
            bundle = parse_bundle(item["bundle"])
            proof = item["proof"]
        except (CryptoError, KeyError, TypeError) as exc:
            raise SignatureError(f"the server sent invalid signers for group {name}") from exc
        keys[(bundle.email, bundle.device)] = (bundle, _check_logged(head, bundle, proof))
    return keys


def _check_change_logged(head: keylog.TreeHead, change: groups.Change, item: Any) -> int:
    """`item` proves that the key log holds the entry recording `change`; its index."""
    missing = IntegrityError(
        f"the key log does not hold change {change.seq} of group {change.name}",
        hint="Do not send to this group: the server may be showing a membership its "
        "administrators never signed to you alone. Retry later; tell your administrator if "
        "it persists.",
    )
    event = (
        keylog.Event.GROUP_MEMBER_ADDED
        if change.action == groups.ADD
        else keylog.Event.GROUP_MEMBER_REMOVED
    )
    index, entry, path = _proved_entry(item, missing)
    if (entry.event, entry.group, entry.email, entry.change) != (
        event,
        change.group,
        change.email,
        change.digest,
    ):
        raise missing
    keylog.check_inclusion(head, entry, index, path)
    return index
