"""The administrator's policy: defaults from the environment, overrides in the database,
validation all at once, and every change in the audit log."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from pli.audit import log
from pli.audit.chain import verify
from pli.errors import ForbiddenError, TooLargeError, UsageError
from pli.server import policy
from pli.server.config import Settings
from tests.unit.server.exchange import NOW

SETTINGS = Settings(
    data_dir=Path("pli-data"),
    default_expiry=timedelta(days=3),
    max_expiry=timedelta(days=10),
    max_file_size=1 << 30,
    require_2fa=True,
)


def test_defaults_come_from_the_environment(session: Session) -> None:
    rules = policy.current(session, SETTINGS)
    assert rules == policy.defaults(SETTINGS)
    assert (rules.default_expiry, rules.max_expiry) == (timedelta(days=3), timedelta(days=10))
    assert (rules.max_file_size, rules.require_2fa, rules.alert_action) == (1 << 30, True, "alert")
    assert policy.overridden(session) == frozenset()


def test_overrides_are_stored_shown_and_removed(session: Session) -> None:
    changes = {"max_expiry": "14d", "user_quota": "5G", "links_allowed": "no"}
    rules = policy.update(session, SETTINGS, changes, now=NOW, actor="local:root")
    assert (rules.max_expiry, rules.user_quota, rules.links_allowed) == (
        timedelta(days=14),
        5 << 30,
        False,
    )
    assert policy.current(session, SETTINGS) == rules
    assert policy.overridden(session) == {"max_expiry", "user_quota", "links_allowed"}
    assert [policy.show(n, getattr(rules, n)) for n in ("max_expiry", "user_quota")] == [
        "14d",
        "5G",
    ]
    again = policy.update(session, SETTINGS, {"user_quota": "default"}, now=NOW, actor="x")
    assert again.user_quota is None
    assert policy.overridden(session) == {"max_expiry", "links_allowed"}


def test_every_change_is_recorded_with_its_old_and_new_value(session: Session) -> None:
    policy.update(session, SETTINGS, {"max_file_size": "2G"}, now=NOW, actor="admin@example.org")
    records = list(log.records(session))
    assert verify(records).ok
    assert [(str(r.event), r.actor, r.subject, r.details) for r in records] == [
        ("policy.changed", "admin@example.org", "max_file_size", {"from": "1G", "to": "2G"})
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_expiry": "forever"}, "max_expiry: invalid duration 'forever'"),
        ({"user_quota": "lots"}, "user_quota: invalid size 'lots'"),
        ({"links_allowed": "maybe"}, "links_allowed: expected true or false"),
        ({"alert_action": "lock"}, "alert_action: expected one of: alert, suspend"),
        ({"alert_downloads_per_hour": "0"}, "alert_downloads_per_hour: expected a whole number"),
        ({"max_file_size": "2T"}, "max_file_size: expected a size between 1 byte and 1T"),
        ({"colour": "blue"}, "there is no policy setting 'colour'"),
        ({"max_expiry": "2d"}, "default_expiry cannot be above max_expiry"),
        ({"max_transfer_size": "1M"}, "max_transfer_size cannot be below max_file_size"),
    ],
)
def test_an_invalid_change_changes_nothing(
    session: Session, changes: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError) as refused:
        policy.update(session, SETTINGS, {"user_quota": "1G", **changes}, now=NOW, actor="x")
    assert message in refused.value.message
    session.rollback()
    assert policy.current(session, SETTINGS) == policy.defaults(SETTINGS)
    assert list(log.records(session)) == []


def test_what_a_policy_refuses(session: Session) -> None:
    rules = dataclasses.replace(
        policy.defaults(SETTINGS), links_allowed=False, requests_allowed=False
    )
    assert rules.expiry(None) == timedelta(days=3)
    assert rules.expiry("10d") == timedelta(days=10)
    with pytest.raises(UsageError, match="maximum of 10d"):
        rules.expiry("11d")
    with pytest.raises(ForbiddenError, match="share links are turned off"):
        rules.check_links()
    with pytest.raises(ForbiddenError, match="file requests are turned off"):
        rules.check_requests()
    rules.check_file_size(1 << 30)
    with pytest.raises(TooLargeError, match=r"\(1G\)"):
        rules.check_file_size((1 << 30) + 1)
