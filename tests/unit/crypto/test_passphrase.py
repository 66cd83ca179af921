"""pli.crypto.passphrase: generated phrases and the strength estimate that guards escrow."""

from __future__ import annotations

import math

import pytest
from xkcdpass import xkcd_password

from pli.crypto import passphrase

EFF_WORDS = set(
    xkcd_password.generate_wordlist(
        wordfile=xkcd_password.locate_wordfile("eff-long"), min_length=1, max_length=20
    )
)


def test_wordlist_is_the_eff_long_list() -> None:
    assert len(EFF_WORDS) == 7776
    assert 6 * math.log2(len(EFF_WORDS)) > 77


def test_generated_phrase_has_six_list_words() -> None:
    phrase = passphrase.generate()
    words = phrase.split(" ")
    assert len(words) == passphrase.GENERATED_WORDS == 6
    assert all(word in EFF_WORDS for word in words)


def test_generated_phrases_differ() -> None:
    assert len({passphrase.generate() for _ in range(20)}) == 20


def test_generated_phrases_estimate_above_the_escrow_minimum() -> None:
    for _ in range(40):
        phrase = passphrase.generate()
        assert passphrase.estimated_bits(phrase) >= passphrase.ESCROW_MIN_BITS, phrase


@pytest.mark.parametrize("words", [3, 8])
def test_word_count_is_honoured(words: int) -> None:
    assert len(passphrase.generate(words).split(" ")) == words


@pytest.mark.parametrize(
    "weak",
    [
        "",
        "password",
        "123456",
        "qwertyuiop",
        "Tr0ub4dor&3",
        "correct horse battery staple",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Password1!",
    ],
)
def test_weak_passwords_estimate_low(weak: str) -> None:
    assert passphrase.estimated_bits(weak) < passphrase.ESCROW_MIN_BITS


def test_login_password_and_email_count_against_the_passphrase() -> None:
    phrase = "alice.martin.chu-nantes"
    alone = passphrase.estimated_bits(phrase)
    known = passphrase.estimated_bits(phrase, ["alice.martin.chu-nantes"])
    assert known < alone
    assert known < 10


@pytest.mark.parametrize("length", [72, 73, 100, 5000])
def test_long_passphrases_are_estimated_not_refused(length: int) -> None:
    weak = "a" * length
    assert passphrase.estimated_bits(weak) < passphrase.ESCROW_MIN_BITS
    strong = (passphrase.generate(12) + " ") * (length // 50 + 1)
    assert passphrase.estimated_bits(strong[:length]) >= passphrase.ESCROW_MIN_BITS
