"""The administrator's policy: limits and switches the server enforces on every path.

Each setting has a default from the server's environment (PLI_DEFAULT_EXPIRY, PLI_MAX_EXPIRY,
PLI_MAX_FILE_SIZE, PLI_REQUIRE_2FA) or from this module; `pli admin policy set NAME=VALUE`
stores an override in the database, where every instance reads it on its next request, and
records the change in the audit log. `NAME=default` removes the override.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pli.audit import log as audit
from pli.audit.chain import Event
from pli.durations import format_duration, parse_duration
from pli.errors import ForbiddenError, TooLargeError, UsageError
from pli.server.config import MAX_FILE_SIZE_CEILING, Settings
from pli.sizes import format_size, parse_size
from pli.store import models

ALERT_ACTIONS = ("alert", "suspend")


@dataclass(frozen=True)
class Policy:
    default_expiry: timedelta
    max_expiry: timedelta
    delete_after_download: bool
    max_file_size: int
    max_transfer_size: int | None  # None: no limit beyond max_file_size per file
    user_quota: int | None  # bytes an account may keep stored at once; None: no quota
    links_allowed: bool
    requests_allowed: bool
    require_2fa: bool
    alert_downloads_per_hour: int
    alert_bytes_per_hour: int
    alert_login_addresses_per_hour: int
    alert_failed_decryptions_per_hour: int
    alert_action: str  # alert | suspend

    def expiry(self, requested: str | None) -> timedelta:
        """The lifetime asked for (a duration like `7d`), or the default; refused above the
        maximum."""
        lifetime = parse_duration(requested) if requested else self.default_expiry
        if lifetime > self.max_expiry:
            raise UsageError(
                f"the expiry is above this server's maximum of {format_duration(self.max_expiry)}"
            )
        return lifetime

    def check_links(self) -> None:
        if not self.links_allowed:
            raise ForbiddenError("share links are turned off on this server by its administrator")

    def check_requests(self) -> None:
        if not self.requests_allowed:
            raise ForbiddenError("file requests are turned off on this server by its administrator")

    def check_file_size(self, size: int) -> None:
        if size > self.max_file_size:
            raise TooLargeError(
                f"the file is larger than this server accepts ({format_size(self.max_file_size)})"
            )


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise UsageError("expected true or false")


def _count(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise UsageError("expected a whole number of 1 or more")
    return int(text)


def _size(text: str) -> int:
    size = parse_size(text)
    if not 1 <= size <= MAX_FILE_SIZE_CEILING:
        raise UsageError("expected a size between 1 byte and 1T")
    return size


def _optional_size(text: str) -> int | None:
    return None if text.strip().lower() in ("none", "unlimited") else _size(text)


def _duration(text: str) -> timedelta:
    lifetime = parse_duration(text)
    if lifetime <= timedelta(0):
        raise UsageError("expected a duration such as 30s, 12h or 7d")
    return lifetime


def _action(text: str) -> str:
    if text not in ALERT_ACTIONS:
        raise UsageError(f"expected one of: {', '.join(ALERT_ACTIONS)}")
    return text


_PARSE: dict[str, Callable[[str], Any]] = {
    "default_expiry": _duration,
    "max_expiry": _duration,
    "delete_after_download": _bool,
    "max_file_size": _size,
    "max_transfer_size": _optional_size,
    "user_quota": _optional_size,
    "links_allowed": _bool,
    "requests_allowed": _bool,
    "require_2fa": _bool,
    "alert_downloads_per_hour": _count,
    "alert_bytes_per_hour": _size,
    "alert_login_addresses_per_hour": _count,
    "alert_failed_decryptions_per_hour": _count,
    "alert_action": _action,
}
NAMES = tuple(_PARSE)


def defaults(settings: Settings) -> Policy:
    return Policy(
        default_expiry=settings.default_expiry,
        max_expiry=settings.max_expiry,
        delete_after_download=False,
        max_file_size=settings.max_file_size,
        max_transfer_size=None,
        user_quota=None,
        links_allowed=True,
        requests_allowed=True,
        require_2fa=settings.require_2fa,
        alert_downloads_per_hour=100,
        alert_bytes_per_hour=50 << 30,
        alert_login_addresses_per_hour=5,
        alert_failed_decryptions_per_hour=5,
        alert_action="alert",
    )


_SIZES = frozenset({"max_file_size", "max_transfer_size", "user_quota", "alert_bytes_per_hour"})


def show(name: str, value: Any) -> str:
    """A setting's value as `policy set` takes it."""
    if name in _SIZES and isinstance(value, int):
        return format_size(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        return format_duration(value)
    if value is None:
        return "none"
    return str(value)


def _stored(session: Session) -> dict[str, str]:
    rows = session.execute(select(models.PolicySetting.name, models.PolicySetting.value))
    return {name: json.loads(value) for name, value in rows if name in _PARSE}


def current(session: Session, settings: Settings) -> Policy:
    """The policy in force: the stored overrides over the environment's defaults."""
    overrides = {name: _PARSE[name](text) for name, text in _stored(session).items()}
    return dataclasses.replace(defaults(settings), **overrides)


def overridden(session: Session) -> frozenset[str]:
    """The settings an administrator has set (the rest are defaults)."""
    return frozenset(_stored(session))


def update(
    session: Session,
    settings: Settings,
    changes: Mapping[str, str],
    *,
    now: datetime,
    actor: str,
) -> Policy:
    """Apply `changes` (name to text; "default" removes an override) all at once, or none if
    one is invalid; each change is recorded. Committed."""
    before = current(session, settings)
    stored = _stored(session)
    for name, text in changes.items():
        if name not in _PARSE:
            raise UsageError(
                f"there is no policy setting {name!r}; the settings are: " + ", ".join(NAMES)
            )
        if text.strip().lower() == "default":
            stored.pop(name, None)
            continue
        try:
            _PARSE[name](text)
        except UsageError as exc:
            raise UsageError(f"{name}: {exc.message}") from exc
        stored[name] = text.strip()
    after = dataclasses.replace(
        defaults(settings), **{name: _PARSE[name](text) for name, text in stored.items()}
    )
    _check_consistent(after)
    _store(session, stored, now=now)
    for name in changes:
        old, new = show(name, getattr(before, name)), show(name, getattr(after, name))
        audit.record(
            session,
            Event.POLICY_CHANGED,
            now=now,
            actor=actor,
            subject=name,
            details={"from": old, "to": new},
        )
    session.commit()
    return after


def _check_consistent(policy: Policy) -> None:
    if policy.default_expiry > policy.max_expiry:
        raise UsageError("default_expiry cannot be above max_expiry")
    if policy.max_transfer_size is not None and policy.max_transfer_size < policy.max_file_size:
        raise UsageError("max_transfer_size cannot be below max_file_size")


def _store(session: Session, stored: Mapping[str, str], *, now: datetime) -> None:
    existing = {row.name: row for row in session.scalars(select(models.PolicySetting))}
    for name, row in existing.items():
        if name not in stored:
            session.delete(row)
    for name, text in stored.items():
        value = json.dumps(text)
        found = existing.get(name)
        if found is None:
            session.add(models.PolicySetting(name=name, value=value, updated_at=now))
        elif found.value != value:
            found.value, found.updated_at = value, now
