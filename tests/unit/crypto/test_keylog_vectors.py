"""Replays tests/vectors/key-log/vectors.json (docs/spec/key-log.md) against pli.crypto.

- rfc6962: the Certificate Transparency reference data (transparency-dev/merkle): hasher
  values, the roots of sizes 1 to 8, the published inclusion and consistency proofs, every other
  proof of that tree, and every corrupted proof refused with the stated error;
- entries: each canonical encoding, its leaf hash and inclusion proof; every invalid leaf refused;
- the signed tree head: the exact canonical document, signed message and signature from the
  fixed key; every invalid head refused;
- the file is what its generator writes today.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import pli.errors
from pli.crypto import age, keylog, merkle
from pli.crypto.bundle import parse_bundle
from pli.crypto.keylog import Entry, TreeHead
from pli.crypto.signing import canonical_json
from pli.errors import PliError

HERE = Path(__file__).resolve().parents[2] / "vectors" / "key-log"
GENERATOR = HERE / "generate_key_log.py"
V: dict[str, Any] = json.loads((HERE / "vectors.json").read_text(encoding="ascii"))
CT = V["rfc6962"]
ENTRIES = V["entries"]
HEAD = V["tree_head"]


def _hashes(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


def _error(name: str) -> type[PliError]:
    cls = getattr(pli.errors, name)
    assert isinstance(cls, type)
    assert issubclass(cls, PliError)
    return cls


def _ct_tree() -> merkle.MemoryTree:
    return merkle.MemoryTree([merkle.leaf_hash(bytes.fromhex(x)) for x in CT["leaves_hex"]])


# --- rfc6962 ------------------------------------------------------------------------------------


def test_hasher() -> None:
    hasher = CT["hasher"]
    assert merkle.EMPTY_ROOT.hex() == hasher["empty_root_hex"]
    assert merkle.leaf_hash(b"").hex() == hasher["empty_leaf_hash_hex"]
    leaf = hasher["leaf"]
    assert merkle.leaf_hash(bytes.fromhex(leaf["leaf_hex"])).hex() == leaf["leaf_hash_hex"]
    node = hasher["node"]
    left, right = bytes.fromhex(node["left_hex"]), bytes.fromhex(node["right_hex"])
    assert merkle.node_hash(left, right).hex() == node["node_hash_hex"]


def test_ct_roots() -> None:
    tree = _ct_tree()
    assert len(CT["roots_hex"]) == 8
    assert tree.read([(0, i) for i in range(8)]) == _hashes(CT["leaf_hashes_hex"])
    for size, root in enumerate(CT["roots_hex"], start=1):
        assert tree.root(size).hex() == root
        assert merkle.Frontier.load(size, tree.read).root().hex() == root


@pytest.mark.parametrize("key", ["reference_inclusion_proofs", "all_inclusion_proofs"])
def test_ct_inclusion_proofs(key: str) -> None:
    tree = _ct_tree()
    leaves = _hashes(CT["leaf_hashes_hex"])
    for case in CT[key]:
        index, size, proof = case["index"], case["size"], _hashes(case["proof_hex"])
        assert tree.inclusion_proof(index, size) == proof
        root = bytes.fromhex(CT["roots_hex"][size - 1])
        merkle.verify_inclusion(index, size, leaves[index], proof, root)
    if key == "all_inclusion_proofs":
        assert len(CT[key]) == 36


@pytest.mark.parametrize("key", ["reference_consistency_proofs", "all_consistency_proofs"])
def test_ct_consistency_proofs(key: str) -> None:
    tree = _ct_tree()
    roots = [merkle.EMPTY_ROOT, *_hashes(CT["roots_hex"])]
    for case in CT[key]:
        old, new, proof = case["old_size"], case["new_size"], _hashes(case["proof_hex"])
        assert tree.consistency_proof(old, new) == proof
        merkle.verify_consistency(old, new, roots[old], roots[new], proof)


@pytest.mark.parametrize("case", CT["invalid_inclusion_proofs"], ids=lambda c: c["name"])
def test_ct_invalid_inclusion(case: dict[str, Any]) -> None:
    with pytest.raises(_error(case["error"])):
        merkle.verify_inclusion(
            case["index"],
            case["size"],
            bytes.fromhex(case["leaf_hash_hex"]),
            _hashes(case["proof_hex"]),
            bytes.fromhex(case["root_hex"]),
        )


@pytest.mark.parametrize("case", CT["invalid_consistency_proofs"], ids=lambda c: c["name"])
def test_ct_invalid_consistency(case: dict[str, Any]) -> None:
    with pytest.raises(_error(case["error"])):
        merkle.verify_consistency(
            case["old_size"],
            case["new_size"],
            bytes.fromhex(case["old_root_hex"]),
            bytes.fromhex(case["new_root_hex"]),
            _hashes(case["proof_hex"]),
        )


# --- entries ------------------------------------------------------------------------------------


def test_bundle_digests() -> None:
    for item in ENTRIES["bundles"].values():
        bundle = parse_bundle(item["signed_bundle"])
        assert keylog.bundle_digest(bundle) == item["bundle_digest"]


def test_entries() -> None:
    tree = merkle.MemoryTree()
    for item in ENTRIES["entries"]:
        leaf = item["leaf"].encode("utf-8")
        entry = Entry.decode(leaf)
        assert entry.doc() == item["doc"]
        assert canonical_json(item["doc"]) == leaf
        assert entry.leaf_hash().hex() == item["leaf_hash_hex"]
        tree.append(entry.leaf_hash())
    assert tree.size == ENTRIES["size"]
    assert tree.root().hex() == ENTRIES["root_hex"]
    assert [tree.root(n).hex() for n in range(tree.size + 1)] == ENTRIES["roots_hex"]
    for item in ENTRIES["entries"]:
        proof = _hashes(item["inclusion_proof_hex"])
        assert tree.inclusion_proof(item["index"]) == proof
    proof = _hashes(ENTRIES["consistency_proof_2_6_hex"])
    assert tree.consistency_proof(2) == proof
    merkle.verify_consistency(2, 6, tree.root(2), tree.root(), proof)


def test_entries_are_built_the_same_way() -> None:
    """The builders reproduce the published device entries from the bundles."""
    bundles = {
        item["bundle_digest"]: parse_bundle(item["signed_bundle"])
        for item in ENTRIES["bundles"].values()
    }
    for item in ENTRIES["entries"]:
        doc = item["doc"]
        if doc["event"] != "device-published":
            continue
        entry = Entry.decode(item["leaf"].encode())
        bundle = bundles[doc["bundle"]]
        assert (bundle.email, bundle.device) == (entry.email, entry.device)


@pytest.mark.parametrize("case", ENTRIES["invalid_entries"], ids=lambda c: c["name"])
def test_invalid_entries(case: dict[str, Any]) -> None:
    with pytest.raises(_error(case["error"])):
        Entry.decode(case["leaf"].encode("utf-8"))


# --- the signed tree head -----------------------------------------------------------------------


def test_tree_head() -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(HEAD["server_ed25519_seed_hex"]))
    assert age.b64encode(key.public_key().public_bytes_raw()) == HEAD["server_ed25519_public"]
    head = TreeHead.from_signed(HEAD["signed"], HEAD["server_ed25519_public"], HEAD["log"])
    assert (head.size, head.root.hex(), head.time) == (HEAD["size"], HEAD["root_hex"], HEAD["time"])
    assert head.root.hex() == ENTRIES["root_hex"]
    assert canonical_json(head.doc()).decode() == HEAD["canonical_doc"]
    message = keylog.HEAD_KIND.encode() + b"\n" + canonical_json(head.doc())
    assert message.hex() == HEAD["signed_message_hex"]
    assert age.b64decode(head.signature).hex() == HEAD["signature_hex"]
    assert head.to_json() == HEAD["stored_form"]
    # Ed25519 is deterministic: signing again gives the same bytes.
    time = datetime.fromisoformat(HEAD["time"])
    again = keylog.sign_head(key, HEAD["log"], head.size, head.root, time)
    assert again == head


@pytest.mark.parametrize("case", HEAD["invalid_tree_heads"], ids=lambda c: c["name"])
def test_invalid_tree_heads(case: dict[str, Any]) -> None:
    with pytest.raises(_error(case["error"])):
        TreeHead.from_signed(case["signed"], HEAD["server_ed25519_public"], HEAD["log"])


def test_vectors_are_up_to_date() -> None:
    run = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
