"""Durations as every pli interface writes them: `30s`, `15m`, `12h`, `7d`; and the times
documents carry: ISO 8601 with a zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from pli.errors import IntegrityError, UsageError

_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise UsageError(f"invalid duration {text!r}: write it like 30s, 15m, 12h or 7d")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def format_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0 and seconds >= _UNITS[unit]:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"


def parse_time(text: object, where: str = "a signed document") -> datetime:
    """A time read from a document a sender or a server wrote: ISO 8601 with a zone, or an
    IntegrityError naming `where` it came from."""
    if not isinstance(text, str):
        raise IntegrityError(f"{where} holds a malformed time")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise IntegrityError(f"{where} holds a malformed time") from exc
    if moment.tzinfo is None:
        raise IntegrityError(f"{where} holds a time without a zone")
    return moment


_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def parse_instant(text: str, option: str) -> datetime:
    """A moment an administrator types (`--since`, `--until`): ISO 8601 with a zone, or a plain
    date meaning midnight UTC (the audit log's own zone); a UsageError naming `option` else."""
    text = text.strip()
    try:
        if _DATE.fullmatch(text):
            return datetime.fromisoformat(text).replace(tzinfo=UTC)
        return parse_time(text, option).astimezone(UTC)
    except (ValueError, IntegrityError) as exc:
        raise UsageError(
            f"{option} {text!r} is not a time with a zone nor a date: write it like "
            "2026-11-01T09:30:00+01:00, 2026-11-01T08:30:00Z or 2026-11-01 (midnight UTC)"
        ) from exc


def parse_window(since: str, until: str) -> tuple[datetime, datetime]:
    """`--since` and `--until` as moments, the first before the second."""
    start, end = parse_instant(since, "--since"), parse_instant(until, "--until")
    if start >= end:
        raise UsageError("--since must be before --until")
    return start, end
