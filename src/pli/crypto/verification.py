"""Verification codes: one number two people read to each other (by phone, in person) to check
that each holds the other's real keys, and that the server showed them the same ones.

    half(E, S) = 6 groups of 5 digits from SHA-256("pli/verification-code/v1" || 0x0A ||
                 canonical({"email": E, "devices": [{"device", "age", "ed25519"}, ...]}))
    code       = the halves of both accounts, in the order of their emails: 12 groups

Each half depends on one account's keys only, as in Signal's safety numbers: a server that
shows each person other keys for the other must match each half on its own (a second preimage
of about 100 bits), not merely make two codes collide (which a combined digest of that size
would allow in about 2^50 work). Devices and accounts are sorted, so both sides compute the same
code whichever of them runs it. SHA-256 over a canonical encoding, nothing more. See
docs/spec/keys.md, "Verification code".
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from pli.crypto import signing
from pli.crypto.bundle import PublicBundle

CODE_KIND = b"pli/verification-code/v1\n"
HALF_GROUPS = 6
GROUP_DIGITS = 5
CODE_DIGITS = 2 * HALF_GROUPS * GROUP_DIGITS
_GROUP_BYTES = 5  # 40 bits reduced to 5 digits: a bias below 10^-7


def account_message(email: str, keys: Iterable[PublicBundle]) -> bytes:
    """The exact bytes one account's half of the code is a digest of."""
    devices = sorted({(b.device, b.age, b.ed25519) for b in keys})
    account = {
        "email": email,
        "devices": [{"device": d, "age": a, "ed25519": e} for d, a, e in devices],
    }
    return CODE_KIND + signing.canonical_json(account)


def half(email: str, keys: Iterable[PublicBundle]) -> list[str]:
    """One account's six groups of five digits."""
    digest = hashlib.sha256(account_message(email, keys)).digest()
    groups = []
    for i in range(HALF_GROUPS):
        chunk = digest[i * _GROUP_BYTES : (i + 1) * _GROUP_BYTES]
        groups.append(f"{int.from_bytes(chunk, 'big') % 10**GROUP_DIGITS:0{GROUP_DIGITS}d}")
    return groups


def verification_code(
    email_a: str, keys_a: Iterable[PublicBundle], email_b: str, keys_b: Iterable[PublicBundle]
) -> str:
    """The code of two accounts and the keys each is seen to have: the same whichever way round
    they are given. Twelve groups of five digits separated by spaces: the half of the account
    whose email sorts first, then the other's."""
    halves = sorted(
        [(email_a.encode(), half(email_a, keys_a)), (email_b.encode(), half(email_b, keys_b))]
    )
    return " ".join(group for _, groups in halves for group in groups)


def normalize_code(text: str) -> str | None:
    """The 60 digits of a code as typed (spaces, tabs and dashes ignored), or None."""
    digits = "".join(ch for ch in text if ch not in " -\t\n")
    if len(digits) != CODE_DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    return digits


def codes_match(expected: str, given: str) -> bool:
    """Whether `given` (as typed) is the code `expected`, compared in constant time."""
    typed = normalize_code(given)
    wanted = normalize_code(expected)
    if typed is None or wanted is None:
        return False
    return hmac.compare_digest(typed.encode("ascii"), wanted.encode("ascii"))
