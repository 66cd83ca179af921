"""Accounts and sessions on a real SQLite database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from pli.errors import AuthError, ConflictError, SessionEndedError, UsageError
from pli.server.auth import service
from pli.store import models

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def test_passwords_are_stored_as_argon2id_hashes(session: Session) -> None:
    user = service.create_user(
        session, "Alice@Lab.Example", "a long enough password", is_admin=False, now=NOW
    )
    assert user.email == "alice@lab.example"
    assert user.password_hash.startswith("$argon2id$")
    assert "a long enough password" not in user.password_hash
    assert service.authenticate(session, "ALICE@lab.example", "a long enough password") == user


def test_wrong_password_and_unknown_account_get_the_same_answer(session: Session) -> None:
    service.create_user(session, "a@example.org", "a long enough password", is_admin=False, now=NOW)
    with pytest.raises(AuthError) as wrong:
        service.authenticate(session, "a@example.org", "not the password")
    with pytest.raises(AuthError) as unknown:
        service.authenticate(session, "b@example.org", "a long enough password")
    assert wrong.value.message == unknown.value.message


@pytest.mark.parametrize(
    ("email", "password"), [("nobody", "a long enough password"), ("a@example.org", "short")]
)
def test_bad_accounts_are_refused(session: Session, email: str, password: str) -> None:
    with pytest.raises(UsageError):
        service.create_user(session, email, password, is_admin=False, now=NOW)


def test_duplicate_accounts_are_a_conflict(session: Session) -> None:
    service.create_user(session, "a@example.org", "a long enough password", is_admin=False, now=NOW)
    with pytest.raises(ConflictError):
        service.create_user(
            session, "A@example.org", "another long password", is_admin=False, now=NOW
        )


def test_sessions_store_only_a_hash_of_the_token(session: Session) -> None:
    user = service.create_user(
        session, "a@example.org", "a long enough password", is_admin=False, now=NOW
    )
    token, expires = service.open_session(session, user, now=NOW, ttl=timedelta(hours=12))
    assert token.startswith(service.TOKEN_PREFIX)
    assert expires == NOW + timedelta(hours=12)
    stored = session.query(models.Session).one()
    assert stored.token_hash == service.token_hash(token)
    assert token not in stored.token_hash
    service.close_session(session, stored)
    assert session.query(models.Session).count() == 0


def test_an_ended_session_is_told_apart_from_a_wrong_password(session: Session) -> None:
    user = service.create_user(
        session, "a@example.org", "a long enough password", is_admin=False, now=NOW
    )
    token, _ = service.open_session(session, user, now=NOW, ttl=timedelta(hours=1))
    idle = timedelta(minutes=30)
    service.close_session(session, service.find_session(session, token, now=NOW, idle=idle))
    for when in (NOW, NOW + timedelta(hours=2)):
        with pytest.raises(SessionEndedError) as ended:
            service.find_session(session, token, now=when, idle=idle)
        assert ended.value.status == 401
        assert ended.value.title == "Session ended"  # what the web app sends to sign-in on
    with pytest.raises(AuthError) as wrong:
        service.authenticate(session, "a@example.org", "not the password")
    assert not isinstance(wrong.value, SessionEndedError)
