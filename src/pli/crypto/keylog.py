"""The key log: an append-only Merkle tree (pli.crypto.merkle) of key events, and its signed heads.

A server could hand out a key it made up for someone, or show different histories to different
clients. The key log makes both visible: every key event is an entry of one public, append-only
log; the server signs its tree heads; a client requires proof that every key it uses is in the
log, that each head it sees extends the last one it verified, and audits its own entries.

    entry     = canonical({"kind": "pli/key-log-entry/v1", "event": ..., "time": ..., ...})
    leaf hash = SHA-256(0x00 || entry)
    head      = {"doc": {"kind": "pli/key-log-head/v1", "log": str, "size": n, "root": hex,
                         "time": "...Z", "key": b64}, "sig": ...}  (pli.crypto.signing)

Errors, all under IntegrityError: a malformed entry or a proof that does not verify is an
IntegrityError; two signed heads that cannot both be true (a fork) is a TamperingError, whose
two heads are the evidence. A head that does not verify is a SignatureError. Public keys only,
except `sign_head`, which takes the server's private key from its caller. See docs/spec/key-log.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pli.crypto import merkle
from pli.crypto.age import b64encode
from pli.crypto.bundle import PublicBundle
from pli.crypto.signing import canonical_json, public_key, sign, verify
from pli.errors import IntegrityError, SignatureError, TamperingError, UsageError

ENTRY_KIND = "pli/key-log-entry/v1"
HEAD_KIND = "pli/key-log-head/v1"

_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ENTRY_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", re.ASCII)
_HEAD_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", re.ASCII)
_LOG_ID = re.compile(r"[\x21-\x7e]{1,255}")
_MAX_SIZE = 1 << 53  # the largest integer canonical JSON carries
_HEAD_FIELDS = {"kind", "log", "size", "root", "time", "key"}

_FORK_HINT = (
    "Keep both tree heads as evidence, stop relying on keys from this server, and tell your "
    "administrator: the server shows different histories of keys to different clients."
)
_MISSING_HINT = (
    "Do not use this key: the server may be handing out a key its owner never published. "
    "Retry later; if it persists, check the key's fingerprint with its owner."
)


class Event(StrEnum):
    """What a key log entry records."""

    DEVICE_PUBLISHED = "device-published"
    DEVICE_APPROVED = "device-approved"
    DEVICE_REMOVED = "device-removed"
    GROUP_MEMBER_ADDED = "group-member-added"
    GROUP_MEMBER_REMOVED = "group-member-removed"


# The members of each event besides kind, event and time. Exactly these, all strings.
_MEMBERS: dict[Event, tuple[str, ...]] = {
    Event.DEVICE_PUBLISHED: ("email", "device", "bundle"),
    Event.DEVICE_APPROVED: ("email", "device", "bundle", "by"),
    Event.DEVICE_REMOVED: ("email", "device"),
    Event.GROUP_MEMBER_ADDED: ("group", "email", "change"),
    Event.GROUP_MEMBER_REMOVED: ("group", "email", "change"),
}


def _valid_member(name: str, value: object) -> bool:
    if not isinstance(value, str):
        return False
    if name == "email":
        # Encodable as UTF-8: a lone surrogate has no canonical form, hence no leaf.
        return 0 < len(value) <= 254 and not any("\ud800" <= c <= "\udfff" for c in value)
    if name in {"device", "by", "group"}:
        return _HEX32.fullmatch(value) is not None
    if name in {"bundle", "change"}:
        return _HEX64.fullmatch(value) is not None
    return name == "time" and _ENTRY_TIME.fullmatch(value) is not None


def bundle_digest(bundle: PublicBundle) -> str:
    """SHA-256 of the signed bundle's stored form, canonical(envelope), in hex: what an entry
    commits to, so that a client can match the exact bundle it was given against the log."""
    return hashlib.sha256(canonical_json(bundle.signed)).hexdigest()


@dataclass(frozen=True)
class Entry:
    """One key event. Members that its event does not carry are None."""

    event: Event
    time: str
    email: str
    device: str | None = None
    bundle: str | None = None
    by: str | None = None
    group: str | None = None
    change: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.event, Event) or not _valid_member("time", self.time):
            raise UsageError("a key log entry needs a known event and a time")
        wanted = _MEMBERS[self.event]
        for name in ("email", "device", "bundle", "by", "group", "change"):
            value = getattr(self, name)
            if (value is not None) != (name in wanted) or (
                value is not None and not _valid_member(name, value)
            ):
                raise UsageError(f"a {self.event} key log entry has a missing or malformed {name}")

    def doc(self) -> dict[str, str]:
        doc = {"kind": ENTRY_KIND, "event": str(self.event), "time": self.time}
        for name in _MEMBERS[self.event]:
            doc[name] = getattr(self, name)
        return doc

    def encode(self) -> bytes:
        """The leaf: canonical JSON of the entry's document."""
        return canonical_json(self.doc())

    def leaf_hash(self) -> bytes:
        return merkle.leaf_hash(self.encode())

    @classmethod
    def decode(cls, leaf: bytes) -> Entry:
        """The entry a leaf holds; IntegrityError unless it is exactly one entry's encoding."""
        try:
            doc = json.loads(leaf.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise IntegrityError("malformed key log entry") from exc
        if not isinstance(doc, dict) or doc.get("kind") != ENTRY_KIND:
            raise IntegrityError("malformed key log entry")
        name = doc.get("event")
        if not isinstance(name, str):
            raise IntegrityError("malformed key log entry")
        try:
            event = Event(name)
        except ValueError as exc:
            raise IntegrityError("malformed key log entry") from exc
        if set(doc) != {"kind", "event", "time", *_MEMBERS[event]}:
            raise IntegrityError("malformed key log entry")
        try:
            entry = cls(event=event, **{k: v for k, v in doc.items() if k not in {"kind", "event"}})
        except (UsageError, TypeError) as exc:
            raise IntegrityError("malformed key log entry") from exc
        # One encoding per entry: a leaf that is the same entry in other bytes would have another
        # hash, and two hashes for one event would let a server show each to different clients.
        if entry.encode() != leaf:
            raise IntegrityError("malformed key log entry")
        return entry

    def describe(self) -> str:
        """For messages: what the entry records, in words."""
        descriptions = {
            Event.DEVICE_PUBLISHED: f"the keys of device {self.device} of {self.email}",
            Event.DEVICE_APPROVED: f"the approval of device {self.device} of {self.email} "
            f"by device {self.by}",
            Event.DEVICE_REMOVED: f"the removal of device {self.device} of {self.email}",
            Event.GROUP_MEMBER_ADDED: f"the addition of {self.email} to group {self.group}",
            Event.GROUP_MEMBER_REMOVED: f"the removal of {self.email} from group {self.group}",
        }
        return descriptions[self.event]


def _entry_time(time: datetime) -> str:
    if time.utcoffset() is None:
        raise UsageError("a key log entry time must be timezone-aware")
    return time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def device_published(bundle: PublicBundle, time: datetime) -> Entry:
    return Entry(
        Event.DEVICE_PUBLISHED,
        _entry_time(time),
        bundle.email,
        device=bundle.device,
        bundle=bundle_digest(bundle),
    )


def device_approved(bundle: PublicBundle, by: str, time: datetime) -> Entry:
    """Device `by`, already trusted by the account, vouched for `bundle`'s device."""
    return Entry(
        Event.DEVICE_APPROVED,
        _entry_time(time),
        bundle.email,
        device=bundle.device,
        bundle=bundle_digest(bundle),
        by=by,
    )


def device_removed(email: str, device: str, time: datetime) -> Entry:
    return Entry(Event.DEVICE_REMOVED, _entry_time(time), email, device=device)


def group_member_added(group: str, email: str, change: str, time: datetime) -> Entry:
    """`email` joined group `group` (or changed role in it) by the signed change whose digest
    is `change` (pli.crypto.groups.digest)."""
    return Entry(Event.GROUP_MEMBER_ADDED, _entry_time(time), email, group=group, change=change)


def group_member_removed(group: str, email: str, change: str, time: datetime) -> Entry:
    return Entry(Event.GROUP_MEMBER_REMOVED, _entry_time(time), email, group=group, change=change)


# --- signed tree heads --------------------------------------------------------------------------


@dataclass(frozen=True)
class TreeHead:
    """The log `log` had `size` entries with Merkle root `root` at `time`, signed by `key`."""

    log: str
    size: int
    root: bytes
    time: str
    key: str
    signature: str

    def doc(self) -> dict[str, Any]:
        return {
            "kind": HEAD_KIND,
            "log": self.log,
            "size": self.size,
            "root": self.root.hex(),
            "time": self.time,
            "key": self.key,
        }

    def signed(self) -> dict[str, Any]:
        return {"doc": self.doc(), "sig": self.signature}

    def to_json(self) -> str:
        """One line of canonical JSON, without a trailing newline."""
        return canonical_json(self.signed()).decode("utf-8")

    def describe(self) -> str:
        return f"tree head of size {self.size} (root {self.root.hex()[:16]}…)"

    @classmethod
    def from_signed(cls, signed: Any, trusted_key_b64: str, log: str) -> TreeHead:
        """The head in `signed` if it is a head of `log` signed by `trusted_key_b64`;
        SignatureError on any flaw (malformed, another key or log, altered)."""
        doc = verify(public_key(trusted_key_b64), HEAD_KIND, signed)
        size, root, time = doc.get("size"), doc.get("root"), doc.get("time")
        if (
            set(doc) != _HEAD_FIELDS
            or doc["log"] != log
            or doc["key"] != trusted_key_b64
            or not isinstance(size, int)
            or isinstance(size, bool)
            or not 0 <= size <= _MAX_SIZE
            or not isinstance(root, str)
            or not _HEX64.fullmatch(root)
            or not isinstance(time, str)
            or not _HEAD_TIME.fullmatch(time)
        ):
            raise SignatureError("malformed key log tree head")
        return cls(
            log=log,
            size=size,
            root=bytes.fromhex(root),
            time=time,
            key=trusted_key_b64,
            signature=signed["sig"],
        )

    @classmethod
    def from_json(cls, text: str, trusted_key_b64: str, log: str) -> TreeHead:
        try:
            signed = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise SignatureError("malformed key log tree head") from exc
        return cls.from_signed(signed, trusted_key_b64, log)


def log_id(key_b64: str) -> str:
    """A server's key log id: derived from its key, so that it stays the same whatever host
    name the server is reached by, and a client pins the two together."""
    return "pli-" + hashlib.sha256(key_b64.encode("ascii")).hexdigest()[:32]


def sign_head(key: Ed25519PrivateKey, log: str, size: int, root: bytes, time: datetime) -> TreeHead:
    """Sign that `log` had `size` entries with Merkle root `root` at `time`."""
    if not _LOG_ID.fullmatch(log):
        raise UsageError("a key log id is 1 to 255 printable ASCII characters, no spaces")
    if isinstance(size, bool) or not 0 <= size <= _MAX_SIZE or len(root) != merkle.HASH_SIZE:
        raise UsageError("a key log tree head needs a size of 0 or more and a 32-byte root")
    if time.utcoffset() is None:
        raise UsageError("a key log tree head time must be timezone-aware")
    head = TreeHead(
        log=log,
        size=size,
        root=root,
        time=time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        key=b64encode(key.public_key().public_bytes_raw()),
        signature="",
    )
    return replace(head, signature=sign(key, HEAD_KIND, head.doc())["sig"])


# --- what a client checks -----------------------------------------------------------------------


def check_inclusion(head: TreeHead, entry: Entry, index: int, proof: Sequence[bytes]) -> None:
    """`entry` is entry `index` of the log as `head` states it; IntegrityError naming the entry
    otherwise. A client runs this on every key it is about to use."""
    try:
        merkle.verify_inclusion(index, head.size, entry.leaf_hash(), proof, head.root)
    except IntegrityError as exc:
        raise IntegrityError(
            f"the key log {head.log} does not prove that it holds {entry.describe()} "
            f"(entry {index} of its {head.describe()})",
            hint=_MISSING_HINT,
        ) from exc


def advance(trusted: TreeHead | None, seen: TreeHead, proof: Sequence[bytes]) -> TreeHead:
    """The head to keep after seeing `seen`, given the head kept so far (None at first contact)
    and the consistency proof between the smaller and the larger of the two.

    The larger head is kept. Two heads of one size with different roots, or heads that no proof
    links, are a fork: TamperingError, with both heads as evidence."""
    if trusted is None:
        return seen
    if (trusted.log, trusted.key) != (seen.log, seen.key):
        raise UsageError("these tree heads belong to different key logs")
    older, newer = (trusted, seen) if trusted.size <= seen.size else (seen, trusted)
    try:
        merkle.verify_consistency(older.size, newer.size, older.root, newer.root, proof)
    except IntegrityError as exc:
        if older.size == newer.size:
            what = f"two signed tree heads of size {older.size} have different roots"
        else:
            what = f"its signed {newer.describe()} does not extend its signed {older.describe()}"
        raise TamperingError(f"the key log {trusted.log} forked: {what}", hint=_FORK_HINT) from exc
    return newer


def audit(
    frontier: merkle.Frontier,
    head: TreeHead,
    leaves: Iterable[bytes],
    keep: Callable[[Entry], bool] = lambda _entry: True,
) -> tuple[merkle.Frontier, list[tuple[int, Entry]]]:
    """Check that `leaves`, the log's entries from `frontier.size` on, are exactly those that
    make `head` out of the tree `frontier` holds; return the frontier at `head.size` and every
    new entry `keep` selects, with its index. The frontier is the auditor's own, from its last
    audit (empty at first), so the server cannot leave an entry out of the list: the root would
    not match. `leaves` may be a stream: one entry is held at a time."""
    grown, entries = frontier.copy(), []
    for index, leaf in enumerate(leaves, start=frontier.size):
        if index >= head.size:
            raise IntegrityError(
                f"the key log {head.log} listed more entries than its {head.describe()} holds"
            )
        grown.append(merkle.leaf_hash(leaf))
        entry = Entry.decode(leaf)
        if keep(entry):
            entries.append((index, entry))
    if grown.size != head.size:
        raise IntegrityError(
            f"the key log {head.log} listed {grown.size - frontier.size} entries after entry "
            f"{frontier.size}, but its {head.describe()} needs {head.size - frontier.size}"
        )
    if grown.root() != head.root:
        raise IntegrityError(
            f"the entries the key log {head.log} listed do not make up its signed "
            f"{head.describe()}: some were left out, added or changed",
            hint=_FORK_HINT,
        )
    return grown, entries


def unknown_devices(
    entries: Sequence[tuple[int, Entry]], email: str, known: Mapping[str, str]
) -> list[tuple[int, Entry]]:
    """The entries that publish or approve keys for `email` other than the bundles in `known`
    (device id -> bundle_digest): keys its owner did not make, for `pli keys audit` to report."""
    return [
        (index, entry)
        for index, entry in entries
        if entry.email == email
        and entry.event in {Event.DEVICE_PUBLISHED, Event.DEVICE_APPROVED}
        and (entry.device is None or known.get(entry.device) != entry.bundle)
    ]
