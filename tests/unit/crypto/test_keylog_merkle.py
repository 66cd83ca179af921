"""pli.crypto.merkle: RFC 6962 tree heads and proofs, generated from stored nodes and verified
with RFC 9162's algorithms.

- every root, inclusion proof and consistency proof of trees of 1 to 70 leaves equals RFC 6962's
  recursive definitions (written out below as the oracle) and verifies;
- a flipped bit, a wrong index, a head of another size, a proof one hash too long or too short,
  a wrong leaf or root: refused, for every proof of those trees;
- forks: a tree that differs from another after some leaf is consistent with it up to that leaf
  and with no later size;
- the stores: Frontier, MemoryTree, a leaf-only reader; proofs read O(log n) nodes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pli.crypto import merkle
from pli.crypto.merkle import MemoryTree, leaf_hash, node_hash
from pli.errors import IntegrityError

MAX = 70
DATA = [f"leaf {i}".encode() for i in range(2 * MAX + 2)]
TREE = MemoryTree([leaf_hash(d) for d in DATA])
OTHER = hashlib.sha256(b"some other hash").digest()
PROPERTY = settings(derandomize=True, max_examples=100, deadline=None)


# --- the oracle: RFC 6962 section 2.1 as written -----------------------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


@cache
def mth(start: int, end: int) -> bytes:
    n = end - start
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaf_hash(DATA[start])
    k = _k(n)
    return node_hash(mth(start, start + k), mth(start + k, end))


def path(m: int, start: int, end: int) -> list[bytes]:
    n = end - start
    if n == 1:
        return []
    k = _k(n)
    if m < k:
        return [*path(m, start, start + k), mth(start + k, end)]
    return [*path(m - k, start + k, end), mth(start, start + k)]


def subproof(m: int, start: int, end: int, whole: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if whole else [mth(start, end)]
    k = _k(n)
    if m <= k:
        return [*subproof(m, start, start + k, whole), mth(start + k, end)]
    return [*subproof(m - k, start + k, end, False), mth(start, start + k)]


def flips(proof: list[bytes]) -> list[list[bytes]]:
    """Each proof with one bit flipped, in each position."""
    result = []
    for i, h in enumerate(proof):
        altered = list(proof)
        altered[i] = bytes([h[0] ^ 0x01]) + h[1:]
        result.append(altered)
    return result


def refused(check: Callable[..., None], *args: object) -> bool:
    try:
        check(*args)
    except IntegrityError:
        return True
    return False


# --- hashing ------------------------------------------------------------------------------------


def test_domain_separation() -> None:
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    # A leaf holding two hashes never hashes like the node over them.
    left, right = leaf_hash(b"l"), leaf_hash(b"r")
    assert leaf_hash(left + right) != node_hash(left, right)


# --- generation equals RFC 6962, for every size up to 70 ----------------------------------------


def test_roots_equal_rfc6962() -> None:
    assert TREE.root(0) == merkle.EMPTY_ROOT
    for n in range(1, MAX + 1):
        assert TREE.root(n) == mth(0, n)


def test_inclusion_proofs_equal_rfc6962_and_verify() -> None:
    for n in range(1, MAX + 1):
        root = mth(0, n)
        for m in range(n):
            proof = TREE.inclusion_proof(m, n)
            assert proof == path(m, 0, n)
            assert len(proof) == merkle.inclusion_proof_length(m, n)
            merkle.verify_inclusion(m, n, leaf_hash(DATA[m]), proof, root)


def test_consistency_proofs_equal_rfc6962_and_verify() -> None:
    for n in range(1, MAX + 1):
        for m in range(n + 1):
            proof = TREE.consistency_proof(m, n)
            assert proof == ([] if m in {0, n} else subproof(m, 0, n, True))
            assert len(proof) == merkle.consistency_proof_length(m, n)
            merkle.verify_consistency(m, n, TREE.root(m), mth(0, n), proof)


# --- every corruption of every proof is refused -------------------------------------------------


def _inclusion_corruptions(m: int, n: int) -> list[tuple[int, int, bytes, list[bytes], bytes]]:
    leaf, root, proof = leaf_hash(DATA[m]), mth(0, n), path(m, 0, n)
    cases = [(m, n, leaf, p, root) for p in flips(proof)]
    cases += [
        (m, n, leaf, [*proof, OTHER], root),  # one hash too many
        (m, n, leaf, [*proof, root], root),
        (m, n, leaf, [OTHER, *proof], root),
        (m, n, OTHER, proof, root),  # another leaf
        (m, n, leaf, proof, OTHER),  # another root
        (m, n, leaf, proof, merkle.EMPTY_ROOT),
    ]
    if proof:
        cases += [(m, n, leaf, proof[:-1], root), (m, n, leaf, proof[1:], root)]  # one too few
    for index in (m - 1, m + 1, m ^ 2):
        if 0 <= index != m:
            cases.append((index, n, leaf, proof, root))  # the leaf placed elsewhere
    for size in (n - 1, n + 1):
        if m < size and size >= 1:
            cases.append((m, size, leaf, proof, mth(0, size)))  # the head of another size
    cases += [(m, 2 * n, leaf, proof, root), (m, n // 2, leaf, proof, root)]
    return cases


def test_every_inclusion_corruption_is_refused() -> None:
    for n in range(1, MAX + 1):
        for m in range(n):
            for index, size, leaf, proof, root in _inclusion_corruptions(m, n):
                assert refused(merkle.verify_inclusion, index, size, leaf, proof, root), (
                    f"accepted a corrupted proof of leaf {m} in {n}: ({index}, {size})"
                )


def _consistency_corruptions(m: int, n: int) -> list[tuple[int, int, bytes, bytes, list[bytes]]]:
    old, new, proof = mth(0, m), mth(0, n), subproof(m, 0, n, True)
    cases = [(m, n, old, new, p) for p in flips(proof)]
    cases += [
        (m, n, old, new, [*proof, OTHER]),  # one hash too many
        (m, n, old, new, [*proof, new]),
        (m, n, old, new, [old, *proof]),
        (m, n, old, new, proof[:-1]),  # one too few
        (m, n, old, new, proof[1:]),
        (m, n, old, new, []),
        (m, n, new, old, proof),  # swapped roots
        (m, n, OTHER, new, proof),
        (m, n, old, OTHER, proof),
        (n, m, new, old, proof),  # backwards
    ]
    for size in (m - 1, m + 1):
        if 0 < size < n:
            cases.append((size, n, mth(0, size), new, proof))  # another old head
    for size in (n - 1, n + 1, 2 * n):
        if size > m:
            cases.append((m, size, old, mth(0, size), proof))  # another new head
    return cases


def test_every_consistency_corruption_is_refused() -> None:
    for n in range(2, MAX + 1):
        for m in range(1, n):
            for old_size, new_size, old, new, proof in _consistency_corruptions(m, n):
                assert refused(merkle.verify_consistency, old_size, new_size, old, new, proof), (
                    f"accepted a corrupted proof from {m} to {n}: ({old_size}, {new_size})"
                )


def test_trivial_consistency() -> None:
    root = TREE.root(5)
    merkle.verify_consistency(5, 5, root, root, [])
    merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, root, [])
    merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    for old, new, old_root, new_root, proof in [
        (5, 5, root, root, [root]),  # equal sizes take no proof
        (5, 5, root, OTHER, []),  # a fork: one size, two roots
        (0, 5, OTHER, root, []),  # the empty tree has one root
        (0, 5, merkle.EMPTY_ROOT, root, [root]),
        (6, 5, root, root, []),
        (-1, 5, root, root, []),
    ]:
        with pytest.raises(IntegrityError):
            merkle.verify_consistency(old, new, old_root, new_root, proof)


def test_inclusion_bounds() -> None:
    leaf = leaf_hash(DATA[0])
    merkle.verify_inclusion(0, 1, leaf, [], leaf)
    for index, size, proof in [(0, 0, []), (1, 1, []), (-1, 1, []), (0, 1, [leaf])]:
        with pytest.raises(IntegrityError):
            merkle.verify_inclusion(index, size, leaf, proof, leaf)
    with pytest.raises(IntegrityError):
        merkle.verify_inclusion(0, 2, leaf, [b"short"], leaf)
    with pytest.raises(IntegrityError):
        TREE.inclusion_proof(5, 5)
    with pytest.raises(IntegrityError):
        TREE.consistency_proof(6, 5)
    with pytest.raises(IntegrityError):
        TREE.root(TREE.size + 1)


# --- forks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fork_at", [0, 1, 7, 8, 20])
def test_a_forked_history_is_consistent_only_up_to_the_fork(fork_at: int) -> None:
    """Two logs that share leaves [0, fork_at) and differ at leaf fork_at."""
    honest = MemoryTree([leaf_hash(d) for d in DATA[:MAX]])
    forked = MemoryTree([leaf_hash(d) for d in DATA[:fork_at]])
    for i in range(fork_at, MAX):
        forked.append(leaf_hash(b"forked " + DATA[i]))
    for n in range(fork_at + 1, MAX + 1):
        assert honest.root(n) != forked.root(n)
        for m in range(1, n + 1):
            args = (m, n, honest.root(m), forked.root(n))
            if m <= fork_at:
                # The shared prefix: truly consistent.
                merkle.verify_consistency(*args, forked.consistency_proof(m, n))
            else:
                # Neither log's proof links the honest head to the forked one.
                assert refused(merkle.verify_consistency, *args, forked.consistency_proof(m, n))
                assert refused(merkle.verify_consistency, *args, honest.consistency_proof(m, n))


# --- stores -------------------------------------------------------------------------------------


def test_frontier_append_returns_the_nodes_a_store_keeps() -> None:
    frontier, stored = merkle.Frontier(), {}
    for n, data in enumerate(DATA[:MAX], start=1):
        for node, value in frontier.append(leaf_hash(data)):
            assert node not in stored
            stored[node] = value
        assert frontier.size == n
        assert frontier.root() == mth(0, n)
        assert len(frontier.hashes) == n.bit_count()
    # Every node a proof needs is there, and the store holds fewer than two per leaf.
    assert len(stored) < 2 * MAX
    read: Callable[[Sequence[merkle.Node]], list[bytes]] = lambda nodes: [  # noqa: E731
        stored[node] for node in nodes
    ]
    for n in range(1, MAX + 1):
        assert merkle.tree_root(n, read) == mth(0, n)
        assert merkle.Frontier.load(n, read).root() == mth(0, n)
        assert merkle.inclusion_proof(n - 1, n, read) == path(n - 1, 0, n)
        assert merkle.consistency_proof(n // 2, n, read) == TREE.consistency_proof(n // 2, n)


def test_frontier_refuses_a_wrong_shape() -> None:
    with pytest.raises(IntegrityError):
        merkle.Frontier(3, [merkle.EMPTY_ROOT])
    with pytest.raises(IntegrityError):
        merkle.Frontier(1, [b"short"])
    with pytest.raises(IntegrityError):
        merkle.Frontier().append(b"short")
    frontier = merkle.Frontier()
    copy = frontier.copy()
    copy.append(leaf_hash(b"x"))
    assert (frontier.size, frontier.root()) == (0, merkle.EMPTY_ROOT)


def test_a_store_that_answers_short_is_refused() -> None:
    with pytest.raises(IntegrityError):
        merkle.inclusion_proof(3, 8, lambda nodes: TREE.read(nodes)[:-1])
    with pytest.raises(IntegrityError):
        merkle.tree_root(8, lambda nodes: [b"short" for _ in nodes])
    with pytest.raises(IntegrityError):
        TREE.read([(40, 0)])


def test_proofs_read_logarithmically_many_nodes() -> None:
    size = (1 << 14) + 1234
    tree = MemoryTree([leaf_hash(i.to_bytes(4, "big")) for i in range(size)])
    reads: list[int] = []

    def counting(nodes: Sequence[merkle.Node]) -> list[bytes]:
        reads.append(len(nodes))
        return tree.read(nodes)

    limit = 2 * size.bit_length() + 2
    for index in (0, 1, size // 3, size - 2, size - 1):
        proof = merkle.inclusion_proof(index, size, counting)
        merkle.verify_inclusion(index, size, tree.read([(0, index)])[0], proof, tree.root())
    for old in (1, 2, 1 << 13, size // 3, size - 1):
        proof = merkle.consistency_proof(old, size, counting)
        merkle.verify_consistency(old, size, tree.root(old), tree.root(), proof)
    assert len(reads) == 10
    assert max(reads) <= limit


def test_leaf_only_reader_agrees() -> None:
    leaves = TREE.read([(0, i) for i in range(MAX)])
    read = merkle.reader_from_leaves(lambda start, end: leaves[start:end])
    for n in range(1, MAX + 1, 7):
        assert merkle.tree_root(n, read) == mth(0, n)
        assert merkle.inclusion_proof(n // 2, n, read) == path(n // 2, 0, n)
        assert merkle.consistency_proof(n // 3, n, read) == TREE.consistency_proof(n // 3, n)
    short = merkle.reader_from_leaves(lambda start, end: leaves[start : end - 1])
    with pytest.raises(IntegrityError):
        merkle.tree_root(8, short)


@PROPERTY
@given(
    size=st.integers(min_value=1, max_value=2000),
    data=st.data(),
)
def test_large_trees_round_trip(size: int, data: st.DataObject) -> None:
    tree = MemoryTree([leaf_hash(i.to_bytes(2, "big")) for i in range(size)])
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    old = data.draw(st.integers(min_value=0, max_value=size))
    root = tree.root()
    proof = tree.inclusion_proof(index, size)
    merkle.verify_inclusion(index, size, tree.read([(0, index)])[0], proof, root)
    consistency = tree.consistency_proof(old, size)
    merkle.verify_consistency(old, size, tree.root(old), root, consistency)
    if consistency:
        altered = flips(consistency)[-1]
        assert refused(merkle.verify_consistency, old, size, tree.root(old), root, altered)
    assert refused(merkle.verify_inclusion, index, size, leaf_hash(b"?"), proof, root)
