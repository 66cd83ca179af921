"""A login's "Second factor required" problem, read back by the client with the second factors
it names (the CLI asks for a recovery code when a passkey is all the account has)."""

from __future__ import annotations

from typing import Any

import pytest

from pli.client.api import problem_error
from pli.errors import AuthError, SecondFactorRequiredError

TITLE = SecondFactorRequiredError.title


@pytest.mark.parametrize(
    ("methods", "read"),
    [
        (["passkey"], ("passkey",)),
        (["totp", "passkey"], ("totp", "passkey")),
        (None, ()),  # a server from before passkeys
        ("passkey", ()),
        ([7, "totp", None], ("totp",)),
    ],
)
def test_the_methods_are_read_back(methods: Any, read: tuple[str, ...]) -> None:
    body = {"type": "about:blank", "title": TITLE, "status": 401, "detail": "needs more"}
    if methods is not None:
        body["methods"] = methods
    err = problem_error(401, body)
    assert isinstance(err, SecondFactorRequiredError)
    assert (err.methods, err.message, err.status) == (read, "needs more", 401)
    assert err.problem_extensions() == ({"methods": list(read)} if read else {})


def test_another_401_is_not_a_second_factor() -> None:
    body = {"title": "Not authenticated", "detail": "wrong email or password", "methods": ["x"]}
    err = problem_error(401, body)
    assert type(err) is AuthError
    assert err.problem_extensions() == {}
