"""Trust on first use: the keys of every correspondent are pinned the first time they are
used, and any later change is refused until the user accepts it with `pli keys trust`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pli.client.state import Home
from pli.crypto.bundle import PublicBundle, parse_bundle
from pli.errors import TrustError

PINS = "pins.json"


@dataclass(frozen=True)
class Pinned:
    email: str
    bundles: list[PublicBundle]
    verified: bool
    first_use: bool = False


def _key_set(bundles: list[PublicBundle]) -> set[tuple[str, str, str]]:
    return {(b.device, b.age, b.ed25519) for b in bundles}


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

    def _save(self, email: str, bundles: list[PublicBundle], verified: bool) -> None:
        data = self._all()
        data[email] = {"devices": [b.signed for b in bundles], "verified": verified}
        self._home.write_json(PINS, data)

    def check(self, email: str, bundles: list[PublicBundle]) -> Pinned:
        """Pin on first use; return the pinned keys if unchanged; refuse a change."""
        if not bundles:
            raise TrustError(f"{email} has no keys yet: ask them to run `pli keys init`")
        pinned = self.get(email)
        if pinned is None:
            self._save(email, bundles, verified=False)
            return Pinned(email, bundles, verified=False, first_use=True)
        if _key_set(pinned.bundles) != _key_set(bundles):
            raise TrustError(
                f"the keys of {email} have changed since you last exchanged files",
                hint=f"check the new fingerprint with {email} by phone, then run "
                f"`pli keys trust {email}`",
            )
        return pinned

    def trust(self, email: str, bundles: list[PublicBundle]) -> Pinned | None:
        """Accept `bundles` as the keys of `email`; returns what was pinned before."""
        before = self.get(email)
        self._save(email, bundles, verified=False)
        return before
