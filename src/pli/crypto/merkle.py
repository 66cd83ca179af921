"""RFC 6962 Merkle trees: tree heads, inclusion and consistency proofs, for the key log.

    leaf hash    = SHA-256(0x00 || leaf)
    node hash    = SHA-256(0x01 || left || right)
    MTH({})      = SHA-256("")
    MTH(D[n])    = node hash(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two below n

Proofs are generated as RFC 6962 section 2.1 defines them (PATH, PROOF) and verified with the
algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2. Public data only: the server may import it.

Storage. Every hash a proof or a tree head needs is the hash of a *perfect* subtree: 2**level
leaves starting at a multiple of 2**level, named by the node `(level, index)` (leaves
`index * 2**level` to `(index + 1) * 2**level - 1`; level 0 is the leaf hashes). A store keeps
those nodes (about two per leaf; `Frontier.append` returns the ones each new leaf completes) and
answers a `NodeReader`: given node names, their hashes. Generating a root, an inclusion proof or a
consistency proof then reads O(log n) nodes in one call and hashes O(log n) times. A store that
keeps only leaf hashes can use `reader_from_leaves`, which is O(n) per proof: say so where used.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Sequence

from pli.errors import IntegrityError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]
"""(level, index): the perfect subtree over leaves [index * 2**level, (index + 1) * 2**level)."""

NodeReader = Callable[[Sequence[Node]], Sequence[bytes]]
"""Answers the hashes of the nodes asked for, in the same order."""

LeafReader = Callable[[int, int], Sequence[bytes]]
"""Answers the leaf hashes of indexes [start, end), in order."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


# --- the shape of the tree: which ranges and nodes, no hashing --------------------------------


def _split(count: int) -> int:
    """The largest power of two smaller than `count` (count >= 2): RFC 6962's k."""
    return 1 << ((count - 1).bit_length() - 1)


def _range_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees whose fold is MTH(D[start:end]), largest first.

    Only for ranges that RFC 6962's recursion produces: `start` is a multiple of the largest
    power of two not above `end - start`, so the binary digits of the size, highest first, cut
    the range into aligned perfect subtrees, exactly as the recursion splits it."""
    nodes, position = [], start
    for level in range((end - start).bit_length() - 1, -1, -1):
        if (end - start) >> level & 1:
            nodes.append((level, position >> level))
            position += 1 << level
    return nodes


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs make PATH(index, D[size]), in proof order (leaf side first)."""
    ranges, start, end = [], 0, size
    while end - start > 1:
        middle = start + _split(end - start)
        if index < middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start = middle
    ranges.reverse()
    return ranges


def _consistency_ranges(old: int, new: int) -> list[tuple[int, int]]:
    """The ranges whose MTHs make PROOF(old, D[new]) for 0 < old < new, in proof order."""
    ranges, start, end, whole = [], 0, new, True
    while old - start != end - start:
        middle = start + _split(end - start)
        if old <= middle:
            ranges.append((middle, end))
            end = middle
        else:
            ranges.append((start, middle))
            start, whole = middle, False
    if not whole:
        # SUBPROOF(m, D[m], false): the old tree's last subtree, which the verifier cannot
        # rebuild from the old root alone.
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def inclusion_proof_length(index: int, size: int) -> int:
    _check_index(index, size)
    return len(_inclusion_ranges(index, size))


def consistency_proof_length(old: int, new: int) -> int:
    _check_sizes(old, new)
    return 0 if old in {0, new} else len(_consistency_ranges(old, new))


def _check_index(index: int, size: int) -> None:
    if not _is_count(index) or not _is_count(size) or index >= size:
        raise IntegrityError("a key log entry index must be below the tree size")


def _check_sizes(old: int, new: int) -> None:
    if not _is_count(old) or not _is_count(new) or old > new:
        raise IntegrityError("a key log consistency proof goes from a smaller tree to a larger one")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# --- generation from stored nodes ---------------------------------------------------------------


def _fold(hashes: Sequence[bytes]) -> bytes:
    """MTH of consecutive perfect subtrees given largest first: RFC 6962's right-leaning shape."""
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def _hash_ranges(ranges: Sequence[tuple[int, int]], read: NodeReader) -> list[bytes]:
    per_range = [_range_nodes(start, end) for start, end in ranges]
    wanted = list(dict.fromkeys(node for nodes in per_range for node in nodes))
    answer = list(read(wanted)) if wanted else []
    if len(answer) != len(wanted) or any(len(h) != HASH_SIZE for h in answer):
        # A store that answers short would otherwise yield a proof that fails far from here.
        raise IntegrityError("the key log's node store answered with missing or malformed hashes")
    known = dict(zip(wanted, answer, strict=True))
    return [_fold([known[node] for node in nodes]) for nodes in per_range]


def tree_root(size: int, read: NodeReader) -> bytes:
    """MTH of the first `size` leaves."""
    if not _is_count(size):
        raise IntegrityError("a key log tree size must be 0 or more")
    return _hash_ranges([(0, size)], read)[0] if size else EMPTY_ROOT


def inclusion_proof(index: int, size: int, read: NodeReader) -> list[bytes]:
    """PATH(index, D[size]) of RFC 6962 section 2.1.1."""
    _check_index(index, size)
    return _hash_ranges(_inclusion_ranges(index, size), read)


def consistency_proof(old: int, new: int, read: NodeReader) -> list[bytes]:
    """PROOF(old, D[new]) of RFC 6962 section 2.1.2; empty when old is 0 or equals new."""
    _check_sizes(old, new)
    if old in {0, new}:
        return []
    return _hash_ranges(_consistency_ranges(old, new), read)


def reader_from_leaves(read_leaves: LeafReader) -> NodeReader:
    """A NodeReader over a store of leaf hashes only: each node is rebuilt from its leaves, so a
    proof costs O(n) reads and hashes. Fine for small logs and tests; large ones store nodes."""

    def read(nodes: Sequence[Node]) -> list[bytes]:
        result = []
        for level, index in nodes:
            layer = list(read_leaves(index << level, (index + 1) << level))
            if len(layer) != 1 << level:
                raise IntegrityError("the key log's leaf store answered with missing leaves")
            while len(layer) > 1:
                layer = [node_hash(layer[i], layer[i + 1]) for i in range(0, len(layer), 2)]
            result.append(layer[0])
        return result

    return read


# --- appending ----------------------------------------------------------------------------------


class Frontier:
    """The right edge of a tree: the roots of the perfect subtrees that make its first `size`
    leaves (one per set bit of size, largest first). Enough to append and to compute the root,
    in O(log n) memory: a server keeps it to add leaves, an auditing client to check that the
    entries a server lists since its last audit make up the server's signed tree head."""

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if not _is_count(size) or len(hashes) != size.bit_count():
            raise IntegrityError("a key log frontier needs one hash per set bit of its size")
        if any(len(h) != HASH_SIZE for h in hashes):
            raise IntegrityError("a key log frontier holds 32-byte hashes")
        self._size = size
        self._hashes = list(hashes)

    @classmethod
    def load(cls, size: int, read: NodeReader) -> Frontier:
        """The frontier of a stored tree of `size` leaves."""
        nodes = _range_nodes(0, size)
        hashes = list(read(nodes)) if nodes else []
        return cls(size, hashes)

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> tuple[bytes, ...]:
        return tuple(self._hashes)

    def copy(self) -> Frontier:
        return Frontier(self._size, self._hashes)

    def root(self) -> bytes:
        return _fold(self._hashes) if self._hashes else EMPTY_ROOT

    def append(self, leaf: bytes) -> list[tuple[Node, bytes]]:
        """Add one leaf hash; return the nodes it completes (itself first), for a store."""
        if len(leaf) != HASH_SIZE:
            raise IntegrityError("a key log leaf hash is 32 bytes")
        level, index, current = 0, self._size, leaf
        completed: list[tuple[Node, bytes]] = [((0, index), leaf)]
        while index & 1:
            # A right child: its left sibling is the frontier's last subtree, now complete.
            current = node_hash(self._hashes.pop(), current)
            level, index = level + 1, index >> 1
            completed.append(((level, index), current))
        self._hashes.append(current)
        self._size += 1
        return completed


class MemoryTree:
    """A tree held in memory, every node kept: for clients, tools and tests."""

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self._frontier = Frontier()
        for leaf in leaves:
            self.append(leaf)

    @property
    def size(self) -> int:
        return self._frontier.size

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash."""
        for (level, _index), value in self._frontier.append(leaf):
            if level == len(self._levels):
                self._levels.append([])
            self._levels[level].append(value)

    def read(self, nodes: Sequence[Node]) -> list[bytes]:
        try:
            return [self._levels[level][index] for level, index in nodes]
        except IndexError as exc:
            raise IntegrityError("the key log has no such node yet") from exc

    def root(self, size: int | None = None) -> bytes:
        return self._frontier.root() if size is None else tree_root(self._within(size), self.read)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(index, self._within(size), self.read)

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        return consistency_proof(old, self._within(new), self.read)

    def _within(self, size: int | None) -> int:
        if size is None:
            return self.size
        if not _is_count(size) or size > self.size:
            raise IntegrityError("the key log is not that large yet")
        return size


# --- verification (RFC 9162) --------------------------------------------------------------------


def _check_proof(proof: Sequence[bytes], expected: int, what: str) -> None:
    # The length is fixed by the index and sizes: checking it first refuses padded and truncated
    # proofs before any hashing, which the algorithms below would also do, later.
    if len(proof) != expected or any(
        not isinstance(h, bytes) or len(h) != HASH_SIZE for h in proof
    ):
        raise IntegrityError(f"the key log's {what} proof does not verify")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` makes for leaf hash `leaf` at `index` in a tree of `size` leaves
    (RFC 9162 section 2.1.3.2, steps 1 to 4); IntegrityError if the proof cannot be one."""
    _check_index(index, size)
    _check_proof(proof, len(_inclusion_ranges(index, size)), "inclusion")
    if len(leaf) != HASH_SIZE:
        raise IntegrityError("the key log's inclusion proof does not verify")
    fn, sn, result = index, size - 1, leaf
    for sibling in proof:
        if sn == 0:
            raise IntegrityError("the key log's inclusion proof does not verify")
        if fn & 1 or fn == sn:
            result = node_hash(sibling, result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            result = node_hash(result, sibling)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise IntegrityError("the key log's inclusion proof does not verify")
    return result


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Leaf hash `leaf` is entry `index` of the tree of `size` leaves whose MTH is `root`."""
    if not hmac.compare_digest(root_from_inclusion_proof(index, size, leaf, proof), root):
        raise IntegrityError("the key log's inclusion proof does not verify")


def verify_consistency(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """The tree of `old` leaves with MTH `old_root` is a prefix of the tree of `new` leaves with
    MTH `new_root` (RFC 9162 section 2.1.4.2); IntegrityError otherwise."""
    _check_sizes(old, new)
    _check_proof(proof, consistency_proof_length(old, new), "consistency")
    if old == new:
        # Same size: nothing to prove, the roots must be equal.
        if not hmac.compare_digest(old_root, new_root):
            raise IntegrityError("the key log's consistency proof does not verify")
        return
    if old == 0:
        # Every tree extends the empty one, but a head of size 0 still has to name its root.
        if not hmac.compare_digest(old_root, EMPTY_ROOT):
            raise IntegrityError("the key log's consistency proof does not verify")
        return
    path = list(proof)
    if old & (old - 1) == 0:
        # The old tree is one perfect subtree of the new: its root is the proof's first node.
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    old_result = new_result = path[0]
    for node in path[1:]:
        if sn == 0:
            raise IntegrityError("the key log's consistency proof does not verify")
        if fn & 1 or fn == sn:
            old_result = node_hash(node, old_result)
            new_result = node_hash(node, new_result)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            new_result = node_hash(new_result, node)
        fn, sn = fn >> 1, sn >> 1
    if (
        sn != 0
        or not hmac.compare_digest(old_result, old_root)
        or not hmac.compare_digest(new_result, new_root)
    ):
        raise IntegrityError("the key log's consistency proof does not verify")
