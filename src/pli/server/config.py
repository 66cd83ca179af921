"""Server settings, from the command line and the environment (see docs/cli.md)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pli.durations import parse_duration


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    default_expiry: timedelta = timedelta(days=7)
    max_expiry: timedelta = timedelta(days=30)
    session_ttl: timedelta = timedelta(hours=12)
    max_file_size: int = 64 << 30
    purge_interval: float = 30.0
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def from_env(cls, data_dir: Path) -> Settings:
        env = os.environ
        return cls(
            data_dir=data_dir,
            database_url=env.get("PLI_DATABASE_URL") or None,
            default_expiry=parse_duration(env.get("PLI_DEFAULT_EXPIRY", "7d")),
            max_expiry=parse_duration(env.get("PLI_MAX_EXPIRY", "30d")),
            session_ttl=parse_duration(env.get("PLI_SESSION_TTL", "12h")),
        )
