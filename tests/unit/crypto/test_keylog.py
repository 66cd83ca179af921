"""pli.crypto.keylog: entries, signed tree heads, and the checks a client makes.

- entries: one canonical encoding each, decoded back exactly, anything else refused;
- tree heads: signed and verified with the server key; another key, another log or any altered
  member refused;
- a client's checks: inclusion of a key it uses, advancing its head only along consistency
  proofs (a fork, a rollback that does not match, two roots for one size: TamperingError), and
  the audit of its own entries, which a server cannot shorten.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pli.crypto import keylog, merkle
from pli.crypto.identity import DeviceIdentity
from pli.crypto.keylog import Entry, Event, TreeHead
from pli.crypto.signing import canonical_json
from pli.errors import IntegrityError, SignatureError, TamperingError, UsageError

LOG = "pli.example.org"
NOW = datetime(2026, 3, 1, 9, 0, 5, tzinfo=UTC)
SERVER = Ed25519PrivateKey.generate()
ALICE = DeviceIdentity.generate("alice@lab.example")
LAPTOP = DeviceIdentity.generate("alice@lab.example")
BOB = DeviceIdentity.generate("bob@ars.example")
GROUP = "ab" * 16
CHANGE = "cd" * 32


def all_events() -> list[Entry]:
    return [
        keylog.device_published(ALICE.public_bundle(), NOW),
        keylog.device_published(BOB.public_bundle(), NOW),
        keylog.device_published(LAPTOP.public_bundle(), NOW),
        keylog.device_approved(LAPTOP.public_bundle(), ALICE.device, NOW),
        keylog.group_member_added(GROUP, BOB.email, CHANGE, NOW),
        keylog.group_member_removed(GROUP, BOB.email, CHANGE, NOW),
        keylog.device_removed(ALICE.email, LAPTOP.device, NOW),
    ]


def log_of(entries: list[Entry]) -> merkle.MemoryTree:
    return merkle.MemoryTree([entry.leaf_hash() for entry in entries])


def head_of(tree: merkle.MemoryTree, size: int | None = None) -> TreeHead:
    size = tree.size if size is None else size
    return keylog.sign_head(SERVER, LOG, size, tree.root(size), NOW)


def public() -> str:
    return keylog.sign_head(SERVER, LOG, 0, merkle.EMPTY_ROOT, NOW).key


# --- entries ------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", all_events(), ids=lambda e: str(e.event))
def test_entry_round_trip(entry: Entry) -> None:
    leaf = entry.encode()
    assert leaf == canonical_json(entry.doc())
    assert Entry.decode(leaf) == entry
    assert entry.leaf_hash() == merkle.leaf_hash(leaf)
    doc = json.loads(leaf)
    assert doc["kind"] == keylog.ENTRY_KIND == "pli/key-log-entry/v1"
    assert doc["event"] == entry.event
    assert doc["time"] == "2026-03-01T09:00:05Z"


def test_entry_members() -> None:
    published, _, _, approved, added, _, removed = all_events()
    assert set(published.doc()) == {"kind", "event", "time", "email", "device", "bundle"}
    assert published.bundle == keylog.bundle_digest(ALICE.public_bundle())
    assert set(approved.doc()) == {"kind", "event", "time", "email", "device", "bundle", "by"}
    assert approved.by == ALICE.device
    assert set(removed.doc()) == {"kind", "event", "time", "email", "device"}
    assert set(added.doc()) == {"kind", "event", "time", "group", "email", "change"}


def test_bundle_digest_is_of_the_stored_form() -> None:
    bundle = ALICE.public_bundle()
    assert keylog.bundle_digest(bundle) == hashlib.sha256(canonical_json(bundle.signed)).hexdigest()


def test_entry_time_is_utc_seconds() -> None:
    local = datetime(2026, 3, 1, 10, 0, 5, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert keylog.device_removed(ALICE.email, ALICE.device, local).time == "2026-03-01T09:00:05Z"
    with pytest.raises(UsageError):
        keylog.device_removed(ALICE.email, ALICE.device, datetime(2026, 3, 1))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Entry(Event.DEVICE_REMOVED, "2026-03-01T09:00:05Z", "a@b.example"),  # no device
        lambda: Entry(Event.DEVICE_REMOVED, "2026-03-01T09:00:05Z", "a@b", device="AB" * 16),
        lambda: Entry(Event.DEVICE_REMOVED, "2026-03-01", "a@b", device="ab" * 16),
        lambda: Entry(Event.DEVICE_REMOVED, "2026-03-01T09:00:05Z", "", device="ab" * 16),
        lambda: Entry(Event.DEVICE_REMOVED, "2026-03-01T09:00:05Z", "a@b", "ab" * 16, by="ab" * 16),
        lambda: Entry(
            Event.GROUP_MEMBER_ADDED, "2026-03-01T09:00:05Z", "x" * 255, group=GROUP, change=CHANGE
        ),
        lambda: Entry(Event.GROUP_MEMBER_ADDED, "2026-03-01T09:00:05Z", "a@b", group=GROUP),
        lambda: keylog.group_member_removed(GROUP, ALICE.email, "CD" * 32, NOW),
        lambda: keylog.device_approved(ALICE.public_bundle(), "not a device", NOW),
        lambda: keylog.group_member_added("team", ALICE.email, CHANGE, NOW),
    ],
)
def test_malformed_entries_are_not_built(make: object) -> None:
    assert callable(make)
    with pytest.raises(UsageError):
        make()


@pytest.mark.parametrize(
    "leaf",
    [
        b"",
        b"\xff",
        b"null",
        b'{"kind":"pli/key-log-entry/v1"}',
        b'{"event":1,"kind":"pli/key-log-entry/v1"}',
        b"[" * 100000,
        b'{"device":"' + b"ab" * 16 + b'","email":"\\ud800","event":"device-removed",'
        b'"kind":"pli/key-log-entry/v1","time":"2026-03-01T09:00:05Z"}',
    ],
)
def test_malformed_leaves_are_refused(leaf: bytes) -> None:
    with pytest.raises(IntegrityError):
        Entry.decode(leaf)


def test_a_leaf_has_one_encoding() -> None:
    entry = all_events()[0]
    pretty = json.dumps(entry.doc(), indent=1, sort_keys=True).encode()
    assert json.loads(pretty) == entry.doc()
    with pytest.raises(IntegrityError):
        Entry.decode(pretty)


# --- tree heads ---------------------------------------------------------------------------------


def test_head_round_trip() -> None:
    tree = log_of(all_events())
    head = head_of(tree)
    line = head.to_json()
    assert "\n" not in line
    assert TreeHead.from_json(line, head.key, LOG) == head
    assert TreeHead.from_signed(json.loads(line), head.key, LOG) == head
    assert (head.size, head.root, head.log) == (7, tree.root(), LOG)
    assert head.time == "2026-03-01T09:00:05.000000Z"
    signed = json.loads(line)
    assert signed["doc"]["kind"] == keylog.HEAD_KIND == "pli/key-log-head/v1"
    assert signed["doc"]["root"] == tree.root().hex()


def test_head_of_the_empty_log() -> None:
    head = keylog.sign_head(SERVER, LOG, 0, merkle.EMPTY_ROOT, NOW)
    assert TreeHead.from_json(head.to_json(), head.key, LOG).size == 0


def test_head_under_another_key_is_refused() -> None:
    head = head_of(log_of(all_events()))
    other = keylog.sign_head(Ed25519PrivateKey.generate(), LOG, 0, merkle.EMPTY_ROOT, NOW).key
    with pytest.raises(SignatureError):
        TreeHead.from_json(head.to_json(), other, LOG)


def test_head_of_another_log_is_refused() -> None:
    head = head_of(log_of(all_events()))
    with pytest.raises(SignatureError):
        TreeHead.from_json(head.to_json(), head.key, "other.example.org")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("size", 8),
        ("size", 6),
        ("root", "00" * 32),
        ("time", "2026-03-01T09:00:06.000000Z"),
        ("log", "other.example.org"),
        ("key", "A" * 43),
        ("kind", "pli/audit-checkpoint/v1"),
    ],
)
def test_altered_head_is_refused(field: str, value: object) -> None:
    head = head_of(log_of(all_events()))
    signed = head.signed()
    signed["doc"][field] = value
    with pytest.raises(SignatureError):
        TreeHead.from_signed(signed, head.key, LOG)


@pytest.mark.parametrize(
    "text", ["", "null", "[]", '{"doc":{},"sig":""}', "{" * 100000, '{"doc":1,"sig":"x"}']
)
def test_malformed_head_is_refused(text: str) -> None:
    with pytest.raises(SignatureError):
        TreeHead.from_json(text, public(), LOG)


def test_head_needs_sane_inputs() -> None:
    for log, size, root, time in [
        ("pli example", 0, merkle.EMPTY_ROOT, NOW),
        ("", 0, merkle.EMPTY_ROOT, NOW),
        (LOG, -1, merkle.EMPTY_ROOT, NOW),
        (LOG, True, merkle.EMPTY_ROOT, NOW),
        (LOG, 1 << 54, merkle.EMPTY_ROOT, NOW),
        (LOG, 1, b"short", NOW),
        (LOG, 1, merkle.EMPTY_ROOT, datetime(2026, 3, 1)),
    ]:
        with pytest.raises(UsageError):
            keylog.sign_head(SERVER, log, size, root, time)


# --- inclusion ----------------------------------------------------------------------------------


def test_every_entry_is_proven_included() -> None:
    entries = all_events()
    tree = log_of(entries)
    head = head_of(tree)
    for index, entry in enumerate(entries):
        keylog.check_inclusion(head, entry, index, tree.inclusion_proof(index))


def test_a_key_missing_from_the_log_is_refused_by_name() -> None:
    entries = all_events()
    tree = log_of(entries)
    head = head_of(tree)
    made_up = keylog.device_published(DeviceIdentity.generate(ALICE.email).public_bundle(), NOW)
    with pytest.raises(IntegrityError) as caught:
        keylog.check_inclusion(head, made_up, 0, tree.inclusion_proof(0))
    assert made_up.device is not None
    assert made_up.device in caught.value.message
    assert "does not prove that it holds the keys of device" in caught.value.message
    assert caught.value.hint is not None
    with pytest.raises(IntegrityError):
        keylog.check_inclusion(head, entries[1], 0, tree.inclusion_proof(0))  # wrong index
    with pytest.raises(IntegrityError):
        keylog.check_inclusion(head, entries[0], 0, tree.inclusion_proof(0)[:-1])
    with pytest.raises(IntegrityError):
        keylog.check_inclusion(head, entries[0], 7, [])


# --- advancing the trusted head -----------------------------------------------------------------


def test_advance_keeps_the_newest_consistent_head() -> None:
    tree = log_of(all_events())
    first = head_of(tree, 2)
    assert keylog.advance(None, first, []) == first
    newer = head_of(tree, 7)
    assert keylog.advance(first, newer, tree.consistency_proof(2, 7)) == newer
    # An older head, proved a prefix of the trusted one (a lagging replica): the trusted stays.
    assert keylog.advance(newer, first, tree.consistency_proof(2, 7)) == newer
    assert keylog.advance(newer, head_of(tree, 7), []) == newer


def _forked() -> tuple[merkle.MemoryTree, merkle.MemoryTree]:
    """The same first three entries, then each log shows another key for Alice."""
    shared = all_events()[:3]
    honest = log_of([*shared, keylog.device_removed(ALICE.email, ALICE.device, NOW)])
    evil_key = DeviceIdentity.generate(ALICE.email).public_bundle()
    forked = log_of([*shared, keylog.device_published(evil_key, NOW)])
    return honest, forked


def test_two_roots_for_one_size_is_a_fork() -> None:
    honest, forked = _forked()
    with pytest.raises(TamperingError) as caught:
        keylog.advance(head_of(honest), head_of(forked), [])
    assert "forked" in caught.value.message
    assert "two signed tree heads of size 4" in caught.value.message
    assert caught.value.hint is not None


def test_a_head_that_does_not_extend_the_trusted_one_is_a_fork() -> None:
    honest, forked = _forked()
    forked.append(merkle.leaf_hash(b"more"))
    trusted = head_of(honest)
    newer = head_of(forked)
    for proof in (forked.consistency_proof(4, 5), []):
        with pytest.raises(TamperingError) as caught:
            keylog.advance(trusted, newer, proof)
        assert "does not extend" in caught.value.message
    # Older, and not a prefix of the trusted head, either.
    with pytest.raises(TamperingError):
        keylog.advance(head_of(forked), head_of(honest), forked.consistency_proof(4, 5))
    # Up to the fork, the two histories agree: no alarm.
    assert keylog.advance(head_of(honest, 3), newer, forked.consistency_proof(3, 5)) == newer


def test_heads_of_different_logs_are_not_compared() -> None:
    tree = log_of(all_events())
    other = keylog.sign_head(SERVER, "other.example.org", 7, tree.root(), NOW)
    with pytest.raises(UsageError):
        keylog.advance(head_of(tree), other, [])


# --- auditing -----------------------------------------------------------------------------------


def test_audit_from_empty_then_incrementally() -> None:
    entries = all_events()
    tree = log_of(entries)
    leaves = [entry.encode() for entry in entries]
    frontier, seen = keylog.audit(merkle.Frontier(), head_of(tree, 3), leaves[:3])
    assert frontier.size == 3
    assert seen == list(enumerate(entries[:3]))
    frontier, seen = keylog.audit(frontier, head_of(tree), leaves[3:])
    assert frontier.root() == tree.root()
    assert seen == [(i, entries[i]) for i in range(3, 7)]


@pytest.mark.parametrize("change", ["omit", "alter", "reorder", "add"])
def test_audit_refuses_a_list_that_does_not_make_the_head(change: str) -> None:
    entries = all_events()
    tree = log_of(entries)
    leaves = [entry.encode() for entry in entries]
    if change == "omit":
        leaves = [*leaves[:2], *leaves[3:]]
    elif change == "alter":
        leaves[2] = keylog.device_removed(ALICE.email, ALICE.device, NOW).encode()
    elif change == "reorder":
        leaves[1], leaves[2] = leaves[2], leaves[1]
    else:
        leaves.append(leaves[0])
    with pytest.raises(IntegrityError):
        keylog.audit(merkle.Frontier(), head_of(tree), leaves)


def test_audit_reports_keys_the_owner_did_not_make() -> None:
    evil = DeviceIdentity.generate(ALICE.email).public_bundle()
    entries = [*all_events(), keylog.device_published(evil, NOW)]
    tree = log_of(entries)
    _, seen = keylog.audit(merkle.Frontier(), head_of(tree), [e.encode() for e in entries])
    known = {
        ALICE.device: keylog.bundle_digest(ALICE.public_bundle()),
        LAPTOP.device: keylog.bundle_digest(LAPTOP.public_bundle()),
    }
    assert keylog.unknown_devices(seen, ALICE.email, known) == [(7, entries[7])]
    # A device the owner knows, logged with other keys, is reported too.
    swapped = {**known, LAPTOP.device: "00" * 32}
    assert [i for i, _ in keylog.unknown_devices(seen, ALICE.email, swapped)] == [2, 3, 7]


def test_times_are_ascii_digits_only() -> None:
    """`\\d` would take any script's digits: an entry's time is ASCII, as the spec writes it."""
    with pytest.raises(UsageError):
        keylog.Entry(keylog.Event.DEVICE_REMOVED, "٢٠٢٦-01-15T08:31:00Z", "a@b.example", "0" * 32)
