"""Server settings, from the command line and the environment (see docs/cli.md)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pli.durations import parse_duration
from pli.errors import ConfigError
from pli.server.ratelimit import LoginPolicy

# The largest file size a server may be configured to accept: the upload route's own ceiling.
MAX_FILE_SIZE_CEILING = 1 << 40


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str | None = None
    default_expiry: timedelta = timedelta(days=7)
    max_expiry: timedelta = timedelta(days=30)
    session_ttl: timedelta = timedelta(hours=12)  # absolute: a session never outlives this
    session_idle: timedelta = timedelta(hours=1)  # ended after this long without a request
    token_key_hex: str | None = None  # PLI_TOKEN_KEY; else a key file in the data directory
    redis_url: str | None = None  # shared login counters across instances
    blob_store: str | None = None  # PLI_BLOB_STORE: s3://bucket/prefix; else data_dir/blobs
    trusted_proxies: tuple[str, ...] = ()  # networks whose X-Forwarded-For is believed
    login_policy: LoginPolicy = field(default_factory=LoginPolicy)
    require_2fa: bool = False  # accounts without a second factor may only enrol one
    max_file_size: int = 64 << 30
    purge_interval: float = 30.0
    upload_grace: timedelta = timedelta(hours=24)  # an upload without progress is dropped after
    clock: Callable[[], datetime] = field(default=utcnow)
    # HTTP hardening (pli.server.security and pli.server.protocol; see docs/security.md)
    max_request_body: int = 8 << 20  # every body but an upload's (bounded by max_file_size)
    max_header_bytes: int = 64 << 10  # request line and headers together
    max_headers: int = 100
    header_timeout: timedelta = timedelta(seconds=10)  # to receive a request line and headers
    body_timeout: timedelta = timedelta(seconds=30)  # longest wait for body bytes
    body_min_rate: int = 16 << 10  # bytes/s a body must average once body_timeout is spent
    admin_networks: tuple[str, ...] = ("127.0.0.0/8", "::1/128")  # who reaches /api/v1/admin
    # Share links and file requests (see pli.server.links and pli.server.requests)
    public_url: str | None = None  # the base of their URLs; else each request's own base URL
    public_rate_limit: int = 60  # requests a minute per client address, under /api/v1/public/

    def expiry(self, requested: str | None) -> timedelta:
        """The lifetime asked for (a duration like `7d`), or this server's default."""
        return parse_duration(requested) if requested else self.default_expiry

    @classmethod
    def from_env(cls, data_dir: Path) -> Settings:
        env = os.environ
        return cls(
            data_dir=data_dir,
            database_url=env.get("PLI_DATABASE_URL") or None,
            default_expiry=parse_duration(env.get("PLI_DEFAULT_EXPIRY", "7d")),
            max_expiry=parse_duration(env.get("PLI_MAX_EXPIRY", "30d")),
            session_ttl=parse_duration(env.get("PLI_SESSION_TTL", "12h")),
            session_idle=parse_duration(env.get("PLI_SESSION_IDLE", "1h")),
            token_key_hex=env.get("PLI_TOKEN_KEY") or None,
            redis_url=env.get("PLI_REDIS_URL") or None,
            blob_store=env.get("PLI_BLOB_STORE") or None,
            require_2fa=env.get("PLI_REQUIRE_2FA", "").lower() in ("1", "true", "yes"),
            trusted_proxies=_networks(env.get("PLI_TRUSTED_PROXIES", "")),
            login_policy=LoginPolicy(
                max_failures=_count(env, "PLI_LOGIN_MAX_FAILURES", 10),
                refuse_after=_count(env, "PLI_LOGIN_REFUSE_AFTER", 20),
                account_slow_after=_count(env, "PLI_LOGIN_ACCOUNT_SLOW_AFTER", 50),
                window=parse_duration(env.get("PLI_LOGIN_WINDOW", "15m")),
            ),
            max_file_size=_file_size(env),
            upload_grace=parse_duration(env.get("PLI_UPLOAD_GRACE", "24h")),
            header_timeout=parse_duration(env.get("PLI_HEADER_TIMEOUT", "10s")),
            body_timeout=parse_duration(env.get("PLI_BODY_TIMEOUT", "30s")),
            body_min_rate=_count(env, "PLI_BODY_MIN_RATE", 16 << 10),
            admin_networks=_networks(
                env.get("PLI_ADMIN_NETWORKS", "127.0.0.0/8,::1/128"), "PLI_ADMIN_NETWORKS"
            ),
            public_url=_public_url(env.get("PLI_PUBLIC_URL", "")),
            public_rate_limit=_count(env, "PLI_PUBLIC_RATE_LIMIT", 60),
        )


def _count(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name)
    if text is None:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"{name} must be a positive whole number")
    return int(text)


def _file_size(env: Mapping[str, str]) -> int:
    size = _count(env, "PLI_MAX_FILE_SIZE", 64 << 30)
    if size > MAX_FILE_SIZE_CEILING:
        raise ConfigError(f"PLI_MAX_FILE_SIZE must be at most {MAX_FILE_SIZE_CEILING} (1 TiB)")
    return size


def _public_url(text: str) -> str | None:
    url = text.strip().rstrip("/")
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError("PLI_PUBLIC_URL must be an http(s) URL such as https://files.example.org")
    return url


def _networks(text: str, name: str = "PLI_TRUSTED_PROXIES") -> tuple[str, ...]:
    found = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            found.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError as exc:
            raise ConfigError(f"{part!r} in {name} is not a network") from exc
    return tuple(found)
