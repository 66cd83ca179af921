"""pli.crypto.verification: the code two people compare to verify each other's keys.

The vector is the one in docs/spec/keys.md, "Verification code"."""

from __future__ import annotations

import hashlib
import itertools

import pytest

from pli.crypto import verification as vc
from pli.crypto.bundle import PublicBundle
from pli.crypto.identity import DeviceIdentity

ALICE, BOB = "alice@lab.example", "bob@ars.example"


def key(email: str, device: str, age: str, ed25519: str) -> PublicBundle:
    return PublicBundle(email, device, age, ed25519, "2026-01-15T08:30:00Z", {})


# The vector's keys (public test keys: SHA-256 of labels, see the spec).
ALICE_KEYS = [
    key(
        ALICE,
        "c64dd533463b4b4da41a26371cdc84c5",
        "age1cr0rcdspzrervm47q8lnnh0fgs8rpfhlf0la39rw23uy3xatpfksgg394u",
        "VaXmjgtdbEfSbshssH+H55Jyr7AVG3bEVjGhj7ExVeY",
    )
]
BOB_KEYS = [
    key(
        BOB,
        "754cdb00f7cbb7c52c81f169dae83749",
        "age15yynxfuhzz0pg0ah0j0j3vnz7z99t25uwzhxa35p9j9rr3yv8pqsjqts04",
        "y0onoWTu7euvXiX+WYYzacTUYJauPbrBGbVmj3Z4aR8",
    ),
    key(
        BOB,
        "388654c7385859f94d034040941a2346",
        "age1nv55m7nrqt25tguvd73nvx5mtcncpfya9kmnhzhpfhurmct8kf3sw4tn54",
        "2pDsC63uuyHlirvYV404cOy2ftYPt/abNuIpLn/Emr0",
    ),
]
OTHER = DeviceIdentity.generate(BOB).public_bundle()
ALICE_MESSAGE = (
    b"pli/verification-code/v1\n"
    b'{"devices":[{"age":"age1cr0rcdspzrervm47q8lnnh0fgs8rpfhlf0la39rw23uy3xatpfksgg394u",'
    b'"device":"c64dd533463b4b4da41a26371cdc84c5",'
    b'"ed25519":"VaXmjgtdbEfSbshssH+H55Jyr7AVG3bEVjGhj7ExVeY"}],"email":"alice@lab.example"}'
)
BOB_MESSAGE = (
    b"pli/verification-code/v1\n"
    b'{"devices":[{"age":"age1nv55m7nrqt25tguvd73nvx5mtcncpfya9kmnhzhpfhurmct8kf3sw4tn54",'
    b'"device":"388654c7385859f94d034040941a2346",'
    b'"ed25519":"2pDsC63uuyHlirvYV404cOy2ftYPt/abNuIpLn/Emr0"},'
    b'{"age":"age15yynxfuhzz0pg0ah0j0j3vnz7z99t25uwzhxa35p9j9rr3yv8pqsjqts04",'
    b'"device":"754cdb00f7cbb7c52c81f169dae83749",'
    b'"ed25519":"y0onoWTu7euvXiX+WYYzacTUYJauPbrBGbVmj3Z4aR8"}],"email":"bob@ars.example"}'
)
ALICE_DIGEST = "97e875ef8c4da32ad19f444afff9f1110cb4946d50aa6bcd4f936c09399f7702"
BOB_DIGEST = "088e5ed18cdd2b0584992411921f974d50e81c84ac5b513df732121eb1ced81c"
ALICE_HALF = "04844 74175 65777 05101 75311 36415"
BOB_HALF = "17068 54329 11671 70724 25847 66286"
VECTOR_CODE = f"{ALICE_HALF} {BOB_HALF}"


def test_vector() -> None:
    assert vc.account_message(ALICE, ALICE_KEYS) == ALICE_MESSAGE
    assert vc.account_message(BOB, BOB_KEYS) == BOB_MESSAGE
    assert hashlib.sha256(ALICE_MESSAGE).hexdigest() == ALICE_DIGEST
    assert hashlib.sha256(BOB_MESSAGE).hexdigest() == BOB_DIGEST
    assert vc.verification_code(ALICE, ALICE_KEYS, BOB, BOB_KEYS) == VECTOR_CODE


@pytest.mark.parametrize(("digest", "half"), [(ALICE_DIGEST, ALICE_HALF), (BOB_DIGEST, BOB_HALF)])
def test_vector_digits_follow_from_the_digest(digest: str, half: str) -> None:
    """The spec's arithmetic, done by hand: 5 bytes per group, big-endian, modulo 100000."""
    raw = bytes.fromhex(digest)
    groups = [int.from_bytes(raw[i : i + 5], "big") % 100_000 for i in range(0, 30, 5)]
    assert " ".join(f"{g:05d}" for g in groups) == half


def test_each_half_depends_on_one_account_only() -> None:
    """What keeps a server from making two codes collide: to fool both people it must match
    each account's half on its own."""
    other = vc.verification_code(ALICE, ALICE_KEYS, BOB, [OTHER])
    assert other.startswith(ALICE_HALF)
    assert not other.endswith(BOB_HALF)


def test_both_sides_compute_the_same_code() -> None:
    """Whichever account runs it, and in whatever order the server lists the devices."""
    codes = {
        vc.verification_code(ALICE, ALICE_KEYS, BOB, list(order))
        for order in itertools.permutations(BOB_KEYS)
    } | {
        vc.verification_code(BOB, list(order), ALICE, ALICE_KEYS)
        for order in itertools.permutations(BOB_KEYS)
    }
    assert codes == {VECTOR_CODE}


def test_a_duplicated_listing_changes_nothing() -> None:
    assert vc.verification_code(ALICE, ALICE_KEYS, BOB, BOB_KEYS + BOB_KEYS[:1]) == VECTOR_CODE


def _changed(bundle: PublicBundle, member: str, value: str) -> PublicBundle:
    fields = {"device": bundle.device, "age": bundle.age, "ed25519": bundle.ed25519}
    fields[member] = value
    return key(bundle.email, **fields)


# By name, not by value: OTHER is made at import, and every test process must collect the
# same test ids.
@pytest.mark.parametrize("member", ["device", "age", "ed25519"])
@pytest.mark.parametrize("which", range(3))
def test_any_change_of_one_key_changes_the_code(member: str, which: int) -> None:
    value = {"device": OTHER.device, "age": OTHER.age, "ed25519": OTHER.ed25519}[member]
    alice, bob = list(ALICE_KEYS), list(BOB_KEYS)
    if which == 0:
        alice[0] = _changed(alice[0], member, value)
    else:
        bob[which - 1] = _changed(bob[which - 1], member, value)
    assert vc.verification_code(ALICE, alice, BOB, bob) != VECTOR_CODE


def test_an_added_or_removed_device_changes_the_code() -> None:
    assert vc.verification_code(ALICE, ALICE_KEYS, BOB, BOB_KEYS[:1]) != VECTOR_CODE
    assert vc.verification_code(ALICE, ALICE_KEYS, BOB, [*BOB_KEYS, OTHER]) != VECTOR_CODE
    # A device moved from one account to the other is a change too.
    moved = [key(ALICE, b.device, b.age, b.ed25519) for b in BOB_KEYS[1:]]
    assert vc.verification_code(ALICE, ALICE_KEYS + moved, BOB, BOB_KEYS[:1]) != VECTOR_CODE


def test_the_emails_count() -> None:
    assert vc.verification_code("alice@lab.exampl", ALICE_KEYS, BOB, BOB_KEYS) != VECTOR_CODE
    swapped = vc.verification_code(BOB, ALICE_KEYS, ALICE, BOB_KEYS)
    assert swapped != VECTOR_CODE


def test_shape() -> None:
    code = vc.verification_code(ALICE, ALICE_KEYS, BOB, [OTHER])
    groups = code.split(" ")
    assert len(groups) == 12
    assert all(len(g) == 5 and g.isdigit() for g in groups)


@pytest.mark.parametrize(
    "typed",
    [
        VECTOR_CODE,
        VECTOR_CODE.replace(" ", ""),
        VECTOR_CODE.replace(" ", "-"),
        f"  {ALICE_HALF}\n{BOB_HALF.replace(' ', chr(9))} ",
    ],
)
def test_codes_match_as_typed(typed: str) -> None:
    assert vc.codes_match(VECTOR_CODE, typed)


@pytest.mark.parametrize(
    "typed",
    [
        "",
        VECTOR_CODE[:-1] + "7",  # one digit off
        ALICE_HALF,  # short
        VECTOR_CODE + "0",  # long
        VECTOR_CODE[:-1] + "x",
        "\uff10" + VECTOR_CODE[1:],  # a non-ASCII digit
    ],
)
def test_codes_that_do_not_match(typed: str) -> None:
    assert not vc.codes_match(VECTOR_CODE, typed)
