"""Server settings, from the command line and the environment (see docs/cli.md)."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

from pli.crypto.checkpoints import ServerKey
from pli.durations import parse_duration
from pli.errors import ConfigError, UsageError
from pli.server.ratelimit import LoginPolicy

# The largest file size a server may be configured to accept: the upload route's own ceiling.
MAX_FILE_SIZE_CEILING = 1 << 40

SMTP_SECURITY = ("starttls", "tls", "none")
_SMTP_OPTIONAL = (
    "PLI_SMTP_FROM",
    "PLI_SMTP_PORT",
    "PLI_SMTP_SECURITY",
    "PLI_SMTP_USERNAME",
    "PLI_SMTP_PASSWORD",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def mail_address_ok(text: str) -> bool:
    """Whether `text` can go into a mail header and an SMTP command as one address: a line
    break there would let it add headers or recipients of its own (header injection)."""
    local, at, domain = text.rpartition("@")
    return bool(local and at and domain) and not any(c.isspace() or ord(c) < 32 for c in text)


@dataclass(frozen=True)
class SmtpSettings:
    """The mail server notifications go through (see pli.server.notify)."""

    host: str
    sender: str  # PLI_SMTP_FROM, the From address
    port: int = 587
    security: str = "starttls"  # starttls | tls (implicit TLS) | none (loopback hosts only)
    username: str | None = None
    password: str | None = field(default=None, repr=False)  # never logged, never in an error

    def __post_init__(self) -> None:
        if not self.host or any(c.isspace() or ord(c) < 32 for c in self.host):
            raise ConfigError("PLI_SMTP_HOST must be a host name or an IP address")
        if not 1 <= self.port <= 65535:
            raise ConfigError("PLI_SMTP_PORT must be a port number, 1 to 65535")
        if self.security not in SMTP_SECURITY:
            raise ConfigError("PLI_SMTP_SECURITY must be starttls (the default), tls or none")
        # In clear, the password and every recipient's address would cross the network.
        if self.security == "none" and not _loopback(self.host):
            raise ConfigError(
                "PLI_SMTP_SECURITY=none is only allowed with a loopback PLI_SMTP_HOST "
                "(127.0.0.1, ::1, localhost): use starttls or tls to reach another host"
            )
        if not mail_address_ok(self.sender):
            raise ConfigError(
                "PLI_SMTP_FROM must be the one address notifications are sent from, "
                "such as pli@example.org (required with PLI_SMTP_HOST)"
            )
        if (self.username is None) != (self.password is None):
            raise ConfigError("set both PLI_SMTP_USERNAME and PLI_SMTP_PASSWORD, or neither")


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
    # Email notifications (see pli.server.notify): None, they are off and nothing is queued
    smtp: SmtpSettings | None = None
    # Audit checkpoints (see pli.audit.checkpointer): signed, and kept outside the database
    audit_checkpoint_interval: timedelta = timedelta(minutes=5)
    audit_checkpoints: Path | None = None  # PLI_AUDIT_CHECKPOINTS: a file they are appended to
    audit_syslog: str | None = None  # PLI_AUDIT_SYSLOG: udp://HOST:PORT or unix:/dev/log
    # PLI_AUDIT_KEY, a private seed shared by instances (else DATA/audit-key): never in a repr
    audit_key_b64: str | None = field(default=None, repr=False)
    # The built web app (pli.server.webapp): None, the one inside the package
    web_dist: Path | None = None  # PLI_WEB_DIST

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
            purge_interval=parse_duration(env.get("PLI_PURGE_INTERVAL", "30s")).total_seconds(),
            header_timeout=parse_duration(env.get("PLI_HEADER_TIMEOUT", "10s")),
            body_timeout=parse_duration(env.get("PLI_BODY_TIMEOUT", "30s")),
            body_min_rate=_count(env, "PLI_BODY_MIN_RATE", 16 << 10),
            admin_networks=_networks(
                env.get("PLI_ADMIN_NETWORKS", "127.0.0.0/8,::1/128"), "PLI_ADMIN_NETWORKS"
            ),
            public_url=_public_url(env.get("PLI_PUBLIC_URL", "")),
            public_rate_limit=_count(env, "PLI_PUBLIC_RATE_LIMIT", 60),
            smtp=_smtp(env),
            audit_checkpoint_interval=_interval(env.get("PLI_AUDIT_CHECKPOINT_INTERVAL", "5m")),
            audit_checkpoints=_checkpoint_file(env.get("PLI_AUDIT_CHECKPOINTS", "")),
            audit_syslog=_syslog(env.get("PLI_AUDIT_SYSLOG", "")),
            audit_key_b64=_audit_key(env.get("PLI_AUDIT_KEY", "")),
            web_dist=_web_dist(env.get("PLI_WEB_DIST", "")),
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


def _interval(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except UsageError as exc:
        raise ConfigError(
            f"PLI_AUDIT_CHECKPOINT_INTERVAL {text!r} is not a duration: write it like 30s, 5m or 1h"
        ) from exc


def _checkpoint_file(text: str) -> Path | None:
    if not text.strip():
        return None
    path = Path(text.strip())
    if path.is_dir() or not path.parent.is_dir():
        raise ConfigError(
            f"PLI_AUDIT_CHECKPOINTS {text!r} must name a file in an existing directory"
        )
    return path


def _syslog(text: str) -> str | None:
    if not text.strip():
        return None
    syslog_address(text.strip())
    return text.strip()


def syslog_address(text: str) -> tuple[str, int] | str:
    """`udp://HOST:PORT` as (host, port), or `unix:/PATH` as the socket's path."""
    hint = "PLI_AUDIT_SYSLOG must be udp://HOST:PORT or unix:/PATH (for example unix:/dev/log)"
    if text.startswith("unix:"):
        if not text[len("unix:") :].startswith("/"):
            raise ConfigError(hint)
        return text[len("unix:") :]
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(hint) from exc
    if parts.scheme != "udp" or not parts.hostname or port is None or parts.path.strip("/"):
        raise ConfigError(hint)
    return parts.hostname, port


def _web_dist(text: str) -> Path | None:
    if not text.strip():
        return None
    path = Path(text.strip())
    if not path.is_dir():  # a mistyped path would otherwise look like a web app not built
        raise ConfigError(f"PLI_WEB_DIST {text!r} must name a directory (a build of web/)")
    return path


def _audit_key(text: str) -> str | None:
    if not text.strip():
        return None
    ServerKey.from_seed_b64(text, "PLI_AUDIT_KEY")  # refused at start, not at the first checkpoint
    return text.strip()


def _smtp(env: Mapping[str, str]) -> SmtpSettings | None:
    host = env.get("PLI_SMTP_HOST", "").strip()
    if not host:
        stray = [name for name in _SMTP_OPTIONAL if env.get(name)]
        if stray:
            raise ConfigError(f"{stray[0]} is set but PLI_SMTP_HOST is not: set both, or neither")
        return None
    security = env.get("PLI_SMTP_SECURITY", "starttls").strip().lower()
    return SmtpSettings(
        host=host,
        sender=env.get("PLI_SMTP_FROM", "").strip(),
        port=_count(env, "PLI_SMTP_PORT", 465 if security == "tls" else 587),
        security=security,
        username=env.get("PLI_SMTP_USERNAME") or None,
        password=env.get("PLI_SMTP_PASSWORD") or None,
    )


def _loopback(host: str) -> bool:
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _networks(text: str, name: str = "PLI_TRUSTED_PROXIES") -> tuple[str, ...]:
    found = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            found.append(str(ipaddress.ip_network(part, strict=False)))
        except ValueError as exc:
            raise ConfigError(f"{part!r} in {name} is not a network") from exc
    return tuple(found)
