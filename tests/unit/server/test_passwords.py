"""Password rules: length, the common-password list, not the email address."""

from __future__ import annotations

import pytest

from pli.errors import UsageError
from pli.server.auth.passwords import check_password


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 12"),
        ("x" * 1025, "at most 1024"),
        ("password1234", "most commonly used"),
        ("qwertyuiop!!", "most commonly used"),
        ("ILoveYou2026!", "most commonly used"),
        ("alice.martin@lab.example", "not be the email"),
    ],
)
def test_weak_passwords_are_refused(password: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        check_password(password, "alice.martin@lab.example")


def test_a_long_uncommon_password_is_accepted() -> None:
    check_password("granite ferry lantern 42", "alice@lab.example")
