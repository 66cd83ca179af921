"""pli.client.transparency: the server's key pinned, heads that only grow, every key proved."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from pli.client.state import Home
from pli.client.transparency import EVIDENCE, STATE, LogStore, checked_keys
from pli.crypto import keylog, merkle
from pli.crypto.checkpoints import ServerKey
from pli.crypto.identity import DeviceIdentity
from pli.errors import ConfigError, IntegrityError, SignatureError, TamperingError
from tests.unit.client.fakes import LOG_KEY, LOG_TIME, logged_devices

ALICE = "alice@example.org"
LAPTOP, PHONE = (DeviceIdentity.generate(ALICE).public_bundle() for _ in range(2))
OTHERS = [
    keylog.device_published(DeviceIdentity.generate("x@example.org").public_bundle(), LOG_TIME)
]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


@pytest.fixture
def store(home: Home) -> LogStore:
    return LogStore(home)


def tree_of(count: int, salt: str = "") -> merkle.MemoryTree:
    return merkle.MemoryTree([merkle.leaf_hash(f"{salt}{i}".encode()) for i in range(count)])


def head_of(tree: merkle.MemoryTree, size: int, key: ServerKey = LOG_KEY) -> dict[str, Any]:
    return key.sign_key_log_head(size, tree.root(size), LOG_TIME).signed()


def test_the_first_head_pins_the_key(store: LogStore) -> None:
    tree = tree_of(3)
    seen = store.accept(head_of(tree, 3), None)
    assert seen.size == 3
    assert store.pinned_key() == LOG_KEY.public_b64
    kept = store.head()
    assert kept is not None
    assert kept.root == tree.root()


def test_a_head_signed_by_another_key_is_refused(store: LogStore) -> None:
    tree = tree_of(3)
    store.accept(head_of(tree, 3), None)
    with pytest.raises(TamperingError, match="not with the key"):
        store.accept(head_of(tree, 3, ServerKey.generate()), [])


def test_a_forged_signature_is_refused(store: LogStore) -> None:
    signed = head_of(tree_of(2), 2)
    signed["doc"]["size"] = 1
    with pytest.raises(SignatureError):
        store.accept(signed, None)


def test_a_grown_log_with_its_proof_is_kept(store: LogStore) -> None:
    tree = tree_of(7)
    store.accept(head_of(tree, 3), None)
    store.accept(head_of(tree, 7), tree.consistency_proof(3, 7))
    kept = store.head()
    assert kept is not None
    assert kept.size == 7
    # A lagging answer, proved consistent, is accepted and the newer head stays.
    assert store.accept(head_of(tree, 5), tree.consistency_proof(5, 7)).size == 5
    kept = store.head()
    assert kept is not None
    assert kept.size == 7


@pytest.mark.parametrize("case", ["same-size", "grown-without-proof", "other-history", "shrunk"])
def test_a_fork_is_kept_as_evidence_and_stops_everything(
    home: Home, store: LogStore, case: str
) -> None:
    tree, other = tree_of(5), tree_of(5, salt="x")
    store.accept(head_of(tree, 4), None)
    seen, proof = {
        "same-size": (head_of(other, 4), []),
        "grown-without-proof": (head_of(tree, 5), None),
        "other-history": (head_of(other, 5), other.consistency_proof(4, 5)),
        "shrunk": (head_of(tree, 3), None),
    }[case]
    with pytest.raises(TamperingError, match="forked"):
        store.accept(seen, proof)
    assert (home.path / EVIDENCE).read_text().count("\n") == 1
    with pytest.raises(TamperingError, match="forked earlier") as info:
        store.accept(head_of(tree, 4), [])
    assert info.value.hint is not None
    assert str(home.path / EVIDENCE) in info.value.hint


def test_the_audit_frontier_round_trips(home: Home, store: LogStore) -> None:
    assert store.frontier().size == 0
    frontier = merkle.Frontier.load(5, tree_of(5).read)
    store.save_frontier(frontier)
    assert LogStore(home).frontier().hashes == frontier.hashes
    (home.path / STATE).write_text('{"audit": {"size": 5, "hashes": ["zz"]}}')
    with pytest.raises(ConfigError, match="corrupted"):
        store.frontier()


# --- keys and their proofs ----------------------------------------------------------------


def test_proved_keys_are_accepted(store: LogStore) -> None:
    offered = checked_keys(store, ALICE, logged_devices([LAPTOP, PHONE], before=OTHERS))
    assert [b.device for b in offered.bundles] == [LAPTOP.device, PHONE.device]
    assert offered.approvals == {}


def _broken(answer: dict[str, Any], flaw: str) -> dict[str, Any]:
    broken = copy.deepcopy(answer)
    proofs = broken["log"]["proofs"]
    if flaw == "no-log":
        del broken["log"]
    elif flaw == "one-proof-short":
        proofs.pop()
    elif flaw == "another-devices-entry":
        proofs[1]["leaf"], proofs[1]["index"] = proofs[0]["leaf"], proofs[0]["index"]
    elif flaw == "another-index":
        proofs[1]["index"] = 0
    elif flaw == "path-altered":
        proofs[1]["path"][0] = "00" * 32
    elif flaw == "path-not-hex":
        proofs[1]["path"][0] = "not hex"
    elif flaw == "leaf-not-canonical":
        proofs[1]["leaf"] = proofs[1]["leaf"].replace(",", ", ")
    elif flaw == "removal-entry":
        entry = keylog.device_removed(ALICE, PHONE.device, LOG_TIME)
        proofs[1]["leaf"] = entry.encode().decode()
    return broken


@pytest.mark.parametrize(
    "flaw",
    [
        "one-proof-short",
        "another-devices-entry",
        "another-index",
        "path-altered",
        "path-not-hex",
        "leaf-not-canonical",
        "removal-entry",
    ],
)
def test_a_key_without_a_valid_proof_is_refused(store: LogStore, flaw: str) -> None:
    answer = _broken(logged_devices([LAPTOP, PHONE], before=OTHERS), flaw)
    with pytest.raises(IntegrityError, match="key log"):
        checked_keys(store, ALICE, answer)


def test_an_answer_without_the_log_is_refused(store: LogStore) -> None:
    with pytest.raises(SignatureError, match="invalid keys"):
        checked_keys(store, ALICE, _broken(logged_devices([LAPTOP]), "no-log"))


def test_keys_of_another_account_are_refused(store: LogStore) -> None:
    with pytest.raises(SignatureError, match="another account"):
        checked_keys(store, "bob@example.org", logged_devices([LAPTOP]))


def test_a_device_listed_twice_is_refused(store: LogStore) -> None:
    with pytest.raises(SignatureError, match="twice"):
        checked_keys(store, ALICE, logged_devices([LAPTOP, LAPTOP]))


def test_an_answer_without_a_head_is_refused(store: LogStore) -> None:
    answer = logged_devices([LAPTOP])
    del answer["log"]["head"]
    with pytest.raises(SignatureError, match="invalid keys"):
        checked_keys(store, ALICE, answer)
