"""API tokens on a real SQLite database: scopes, expiry, HMAC storage, revocation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from pli.errors import AuthError, ConfigError, ForbiddenError, NotFoundError, UsageError
from pli.server.auth import service, tokens
from pli.store import models

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KEY = bytes(range(32))


def _user(session: Session, email: str = "a@example.org", *, admin: bool = False) -> models.User:
    return service.create_user(session, email, "a long enough password", is_admin=admin, now=NOW)


def test_a_token_is_found_by_its_hmac_until_it_expires(session: Session) -> None:
    user = _user(session)
    token, row = tokens.create(
        session, user, name="job", scopes=["send", "send"], ttl=timedelta(days=1), now=NOW, key=KEY
    )
    assert token.startswith(tokens.API_TOKEN_PREFIX)
    assert row.scopes == "send"
    assert row.token_hmac == tokens.token_hmac(KEY, token) != token
    assert tokens.find(session, token, now=NOW + timedelta(hours=1), key=KEY).id == row.id
    with pytest.raises(AuthError):
        tokens.find(session, token, now=NOW + timedelta(days=1), key=KEY)
    with pytest.raises(AuthError):
        tokens.find(session, token, now=NOW, key=bytes(32))  # another server key


@pytest.mark.parametrize("scopes", [[], ["delete"], ["send", "root"]])
def test_unknown_scopes_are_refused(session: Session, scopes: list[str]) -> None:
    with pytest.raises(UsageError):
        tokens.create(
            session,
            _user(session),
            name="x",
            scopes=scopes,
            ttl=timedelta(days=1),
            now=NOW,
            key=KEY,
        )


def test_admin_scope_is_for_administrators(session: Session) -> None:
    with pytest.raises(ForbiddenError):
        tokens.create(
            session,
            _user(session),
            name="x",
            scopes=["admin"],
            ttl=timedelta(days=1),
            now=NOW,
            key=KEY,
        )
    admin = _user(session, "root@example.org", admin=True)
    tokens.create(
        session, admin, name="x", scopes=["admin"], ttl=timedelta(days=1), now=NOW, key=KEY
    )


def test_lifetime_is_bounded(session: Session) -> None:
    with pytest.raises(UsageError):
        tokens.create(
            session,
            _user(session),
            name="x",
            scopes=["send"],
            ttl=timedelta(days=400),
            now=NOW,
            key=KEY,
        )


def test_only_the_owner_revokes(session: Session) -> None:
    alice, bob = _user(session), _user(session, "b@example.org")
    token, row = tokens.create(
        session, alice, name="x", scopes=["receive"], ttl=timedelta(days=1), now=NOW, key=KEY
    )
    with pytest.raises(NotFoundError):
        tokens.revoke(session, bob, row.id, now=NOW)
    tokens.revoke(session, alice, row.id, now=NOW)
    with pytest.raises(AuthError):
        tokens.find(session, token, now=NOW, key=KEY)


def test_the_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    first = tokens.load_key(tmp_path, None)
    assert len(first) == 32
    assert tokens.load_key(tmp_path, None) == first
    assert (tmp_path / tokens.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert tokens.load_key(tmp_path, "ab" * 32) == bytes([0xAB]) * 32
    with pytest.raises(ConfigError):
        tokens.load_key(tmp_path, "abcd")
