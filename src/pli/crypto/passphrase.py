"""Passphrase strength for escrowed keys, and generated six-word phrases.

An escrowed private bundle can be attacked offline by whoever copies the server, so its
passphrase must resist guessing on its own: an estimated 70 bits or more (zxcvbn's estimate).
A generated phrase of six words from the EFF long list carries 6 * log2(7776) ≈ 77.5 bits.
"""

from __future__ import annotations

import math
import secrets

ESCROW_MIN_BITS = 70.0
GENERATED_WORDS = 6
_ZXCVBN_MAX_LENGTH = 72  # zxcvbn raises ValueError on anything longer


def estimated_bits(passphrase: str, user_inputs: list[str] | None = None) -> float:
    from zxcvbn import zxcvbn  # noqa: PLC0415  (large word lists: loaded only when needed)

    if not passphrase:
        return 0.0  # zxcvbn fails with an IndexError on the empty string
    # zxcvbn only looks at the first 72 characters; anything longer is at least that strong.
    result = zxcvbn(passphrase[:_ZXCVBN_MAX_LENGTH], user_inputs=user_inputs or [])
    return float(result["guesses_log10"]) * math.log2(10)


def generate(words: int = GENERATED_WORDS) -> str:
    from xkcdpass import xkcd_password  # noqa: PLC0415

    wordlist = xkcd_password.generate_wordlist(
        wordfile=xkcd_password.locate_wordfile("eff-long"), min_length=1, max_length=20
    )
    return " ".join(secrets.choice(wordlist) for _ in range(words))
