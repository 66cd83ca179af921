"""The checks the SDK makes of what the server assigns, before signing it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pli.client.sdk import _check_expiry, _parse_time
from pli.errors import IntegrityError


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_the_expiry_asked_for_is_accepted() -> None:
    _check_expiry(_iso(datetime.now(UTC) + timedelta(days=3)), timedelta(days=3))


def test_a_later_expiry_set_by_the_server_is_refused() -> None:
    with pytest.raises(IntegrityError, match="later expiry"):
        _check_expiry(_iso(datetime.now(UTC) + timedelta(days=30)), timedelta(days=3))


@pytest.mark.parametrize("text", ["yesterday", "2026-11-28T12:00:00", ""])
def test_malformed_or_zoneless_times_are_refused(text: str) -> None:
    with pytest.raises(IntegrityError):
        _parse_time(text)
