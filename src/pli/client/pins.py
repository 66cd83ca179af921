"""Trust on first use: the keys of every correspondent are pinned the first time they are
used, and any later change is refused until the user accepts it with `pli keys trust` — unless
the account itself vouched for it: a new device approved (signed) by a device already pinned, or
a device that left.

A pin is marked verified once the user compared a verification code with the correspondent
(`pli keys verify`). A change of verified keys can only be accepted that way again."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pli.client.state import Home
from pli.crypto import devices, groups
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.errors import ConfigError, CryptoError, TrustError

PINS = "pins.json"


@dataclass(frozen=True)
class Pinned:
    email: str
    bundles: list[PublicBundle]
    verified: bool
    first_use: bool = False
    changes: tuple[str, ...] = ()  # device changes accepted on the account's own say-so


def _key_set(bundles: list[PublicBundle]) -> set[tuple[str, str, str]]:
    return {(b.device, b.age, b.ed25519) for b in bundles}


def same_keys(a: list[PublicBundle], b: list[PublicBundle]) -> bool:
    return _key_set(a) == _key_set(b)


def _prints(bundles: list[PublicBundle]) -> str:
    return ", ".join(f"{b.fingerprint} (device {b.device})" for b in bundles) or "none"


def verified_change(email: str, old: list[PublicBundle], new: list[PublicBundle]) -> TrustError:
    """The refusal of a change to keys the user verified: only a new comparison lifts it."""
    return TrustError(
        f"the verified keys of {email} have changed: old {_prints(old)}; new {_prints(new)}",
        hint=f"compare the new verification code with {email} by phone, then run "
        f"`pli keys verify {email}` again",
    )


def approved_changes(
    trusted: list[PublicBundle], offered: list[PublicBundle], approvals: Mapping[str, Any]
) -> list[str] | None:
    """What changed from `trusted` to `offered`, in words, if every device that is new was
    approved by a trusted device or by a new device itself approved that way; else None."""
    if len({b.device for b in offered}) != len(offered):
        return None  # one device listed twice: which keys would be its?
    known = {b.device: b for b in trusted if any(b.same_keys(o) for o in offered)}
    waiting = [b for b in offered if not any(b.same_keys(t) for t in trusted)]
    if any(b.device in {t.device for t in trusted} for b in waiting):
        return None  # a device id kept with other keys: that is no device change, refuse it
    changes = [
        f"device {b.device} of {b.email} was removed" for b in trusted if b.device not in known
    ]
    while waiting:
        progress = False
        for bundle in list(waiting):
            approval = approvals.get(bundle.device)
            try:
                approver = known.get(devices.by_of(approval))
                if approver is None:
                    continue
                devices.check_approval(approval, approver, bundle)
            except CryptoError:
                return None
            known[bundle.device] = bundle
            waiting.remove(bundle)
            changes.append(
                f"device {bundle.device} of {bundle.email} ({bundle.fingerprint}) was added, "
                f"approved by its device {approver.device}"
            )
            progress = True
        if not progress:
            return None
    return changes


class PinStore:
    def __init__(self, home: Home) -> None:
        self._home = home

    def _all(self) -> dict[str, Any]:
        data = self._home.read_json(PINS)
        return data if isinstance(data, dict) else {}

    def get(self, email: str) -> Pinned | None:
        entry = self._all().get(email)
        if entry is None:
            return None
        return Pinned(email, [parse_bundle(s) for s in entry["devices"]], bool(entry["verified"]))

    def all(self) -> list[Pinned]:
        """Every pinned account, by email."""
        return [p for email in sorted(self._all()) if (p := self.get(email)) is not None]

    def _save(
        self, email: str, bundles: list[PublicBundle], verified: bool, since: int | None = None
    ) -> None:
        """Pin `bundles`. Kept beside them: every device key ever pinned for the account
        (`seen`), and the key log's size when it was first pinned (`since`): what a group
        change's signer is checked against (`trusted_signer`)."""
        data = self._all()
        before = data.get(email) or {}
        seen = {tuple(k) for k in before.get("seen", []) if isinstance(k, list)}
        seen |= {(b.device, b.ed25519) for b in bundles}
        data[email] = {
            "devices": [b.signed for b in bundles],
            "verified": verified,
            "seen": sorted([d, k] for d, k in seen),
            "since": before.get("since", since if since is not None else 0),
        }
        self._home.write_json(PINS, data)

    def trusted_signer(self, email: str, bundle: PublicBundle, activated: int, logged: int) -> bool:
        """Whether `bundle`, a device of `email` whose keys the key log made active at entry
        `activated`, may have signed what the log recorded at entry `logged`: a device this
        client pinned for the account at some time, or one older than the account's first pin
        here (trusted on first use with the rest of its history, as keys are). A device the
        server made up for the account after that is neither."""
        entry = self._all().get(email) or {}
        seen = {tuple(k) for k in entry.get("seen", []) if isinstance(k, list)}
        pinned = self.get(email)
        current = {(b.device, b.ed25519) for b in pinned.bundles} if pinned else set()
        if (bundle.device, bundle.ed25519) in seen | current:
            return True
        since = entry.get("since", 0)
        return isinstance(since, int) and activated < since and logged < since

    def check(
        self,
        email: str,
        bundles: list[PublicBundle],
        approvals: Mapping[str, Any] | None = None,
        log_size: int | None = None,
    ) -> Pinned:
        """Pin on first use; return the pinned keys if unchanged. A change is accepted when
        its every new device was approved by a device already trusted (`approvals`: device id
        -> signed approval) and is then pinned as verified as the keys before; devices that
        left are dropped. Any other change is refused. `log_size`: the key log's size as the
        client last verified it, kept with a first pin."""
        if not bundles:
            raise TrustError(f"{email} has no keys yet: ask them to run `pli keys init`")
        pinned = self.get(email)
        if pinned is None:
            self._save(email, bundles, verified=False, since=log_size)
            return Pinned(email, bundles, verified=False, first_use=True)
        if not same_keys(pinned.bundles, bundles):
            changes = approved_changes(pinned.bundles, bundles, approvals or {})
            if changes is not None:
                self._save(email, bundles, verified=pinned.verified)
                return Pinned(email, bundles, pinned.verified, changes=tuple(changes))
            if pinned.verified:
                raise verified_change(email, pinned.bundles, bundles)
            raise TrustError(
                f"the keys of {email} have changed since you last exchanged files",
                hint=f"check the new fingerprint with {email} by phone, then run "
                f"`pli keys trust {email}`",
            )
        return pinned

    def trust(self, email: str, bundles: list[PublicBundle]) -> Pinned | None:
        """Accept `bundles` as the keys of `email`, unverified; returns what was pinned before.
        Verified keys are not replaced this way: only `verify` replaces them."""
        before = self.get(email)
        if before is not None and before.verified:
            if same_keys(before.bundles, bundles):
                return before
            raise verified_change(email, before.bundles, bundles)
        self._save(email, bundles, verified=False)
        return before

    def verify(self, email: str, bundles: list[PublicBundle]) -> Pinned | None:
        """Pin `bundles` as the keys of `email`, verified: the user compared the code computed
        over exactly these keys. Returns what was pinned before."""
        if not bundles:
            raise TrustError(f"{email} has no keys yet: there is nothing to verify")
        before = self.get(email)
        self._save(email, bundles, verified=True)
        return before


GROUP_PINS = "groups.json"


class GroupPins:
    """What this device saw of each group's signed history (docs/spec/groups.md, "Pinning"),
    in PLI_HOME/groups.json: {id: {"name", "genesis", "seq", "head"}}. A later history must
    extend it; a name that now leads to another group is refused until the user forgets the
    old one."""

    def __init__(self, home: Home) -> None:
        self._home = home

    def _all(self) -> dict[str, Any]:
        data = self._home.read_json(GROUP_PINS)
        return data if isinstance(data, dict) else {}

    def check(self, state: groups.GroupState) -> bool:
        """Check `state` against what was pinned, then pin it; whether it is the first use."""
        data = self._all()
        for group_id, pin in data.items():
            if isinstance(pin, dict) and pin.get("name") == state.name and group_id != state.group:
                raise TrustError(
                    f"group {state.name} is not the group this device sent to before: the "
                    "server now gives it another identity and history",
                    hint=f"ask its administrator whether it was recreated; if it was, run "
                    f"`pli groups forget {state.name}` and check its members before sending",
                )
        pinned = data.get(state.group)
        if pinned is not None:
            try:
                seq, head, genesis = pinned["seq"], pinned["head"], pinned["genesis"]
            except (KeyError, TypeError) as exc:
                raise ConfigError(
                    f"{self._home.path / GROUP_PINS} is corrupted",
                    hint=f"run `pli groups forget {state.name}`, then check its members",
                ) from exc
            groups.check_extends(state, seq, head, genesis)
        if not state.digests:
            return True
        data[state.group] = {
            "name": state.name,
            "genesis": state.digests[0],
            "seq": state.seq,
            "head": state.head,
        }
        self._home.write_json(GROUP_PINS, data)
        return pinned is None

    def pinned_head(self, group_id: str) -> str | None:
        pin = self._all().get(group_id)
        return pin.get("head") if isinstance(pin, dict) else None

    def forget(self, name: str) -> bool:
        data = self._all()
        kept = {k: v for k, v in data.items() if not isinstance(v, dict) or v.get("name") != name}
        self._home.write_json(GROUP_PINS, kept)
        return len(kept) != len(data)
