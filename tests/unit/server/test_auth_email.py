"""Property tests of email normalisation: every email a client sends (login, recipients, key
lookups, account creation) goes through it, so any text must give an address that is safe to
store, compare and print, or a usage error."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pli.errors import UsageError
from pli.server.auth.service import normalize_email

ADDRESSES = st.builds(
    lambda local, domain, pad: f"{pad}{local}@{domain}{pad}",
    st.text(min_size=0, max_size=70),
    st.text(min_size=0, max_size=200),
    st.sampled_from(["", " ", "\t", "\n", "\u00a0", "\u2028"]),
)


@settings(derandomize=True, max_examples=1500)
@given(text=st.text(max_size=300) | ADDRESSES | st.emails().map(str.upper))
def test_any_text_is_an_address_or_a_usage_error(text: str) -> None:
    try:
        email = normalize_email(text)
    except UsageError:
        return
    local, at, domain = email.partition("@")
    assert at
    assert local
    assert domain
    assert len(email) <= 254
    assert email == email.strip()
    assert not any(c.isspace() for c in email)
    # Nothing that a database refuses (U+0000, lone surrogates) or a terminal obeys.
    email.encode("utf-8")
    assert not any(unicodedata.category(c) in {"Cc", "Cf", "Cs"} for c in email)
    # Normalising twice changes nothing, so stored and looked-up forms always compare equal.
    assert normalize_email(email) == email


@pytest.mark.parametrize(
    "text",
    ["a\x00@example.org", "a@example.org\x1b[2J", "a\u202e@example.org", "\ud800@example.org"],
)
def test_controls_and_invisible_characters_are_refused(text: str) -> None:
    with pytest.raises(UsageError):
        normalize_email(text)
