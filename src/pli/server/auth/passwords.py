"""Password rules (CNIL/ANSSI, OWASP ASVS): long enough when the password is the only factor,
and not one of the passwords attackers try first."""

from __future__ import annotations

import functools

from pli.errors import UsageError

MIN_LENGTH = 12
MAX_LENGTH = 1024


@functools.cache
def _common() -> frozenset[str]:
    # zxcvbn ships a ranked list of the 30,000 most common leaked passwords.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # noqa: PLC0415  (large: load on use)

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, email: str) -> None:
    if len(password) < MIN_LENGTH:
        raise UsageError(f"the password must have at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise UsageError(f"the password must have at most {MAX_LENGTH} characters")
    lowered = password.lower()
    if lowered in _common() or lowered.rstrip("0123456789!.") in _common():
        raise UsageError("this password is among the most commonly used: choose another")
    if lowered in (email.lower(), email.lower().partition("@")[0]):
        raise UsageError("the password must not be the email address")
