"""Entry points for the server-side verbs: `pli serve` and `pli admin …`."""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import shutil
import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from pli.errors import ConfigError, UsageError
from pli.server.auth import service as accounts
from pli.server.config import Settings
from pli.store import models
from pli.store.db import Database, database_url, make_engine, migrate, migrate_apart

if TYPE_CHECKING:
    from pli.server.purge import Report


def serve(
    data: Path,
    host: str,
    port: int,
    *,
    announce: Callable[[str], None],
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
    invoked_as: Path | None = None,
) -> None:
    """Serve until stopped. `invoked_as` is the `pli` program the server was started with,
    for the commands it suggests."""
    import uvicorn  # noqa: PLC0415  (the web stack is loaded only to serve)

    from pli.server import memory, security  # noqa: PLC0415
    from pli.server.app import create_app  # noqa: PLC0415
    from pli.server.protocol import protocol_for  # noqa: PLC0415

    tls = _tls_context(tls_cert, tls_key)
    settings = Settings.from_env(data)
    memory.hand_back_large_blocks()
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    migrate_apart(database_url(data, settings.database_url))
    app = create_app(settings)
    url = f"{'https' if tls else 'http'}://{host}:{port}"
    where = "PostgreSQL" if settings.database_url else f"SQLite in {data}"
    blobs = settings.blob_store or data / "blobs"
    announce(f"pli is serving on {url} (metadata: {where}; blobs: {blobs})")
    announce(
        f"this server signs its key log and audit checkpoints with key "
        f"{app.state.audit_public_key}: publish it for `pli login --server-key`"
    )
    pli = _program(invoked_as or Path(sys.argv[0]))
    announce(f"create the first account with:  {pli} admin create-user EMAIL --data {data} --admin")
    announce(f"then, on a client:               {pli} login {url} --email EMAIL")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        security.harden(app, settings),
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        http=protocol_for(settings),  # httptools, with header size, count and time limits
        ssl_context_factory=(lambda _config, _default: tls) if tls else None,
        # pli decides which proxies to believe (PLI_TRUSTED_PROXIES); uvicorn must not rewrite
        # the client address from headers on its own.
        proxy_headers=False,
        timeout_keep_alive=30,
        ws="none",  # pli serves no WebSocket: none is accepted, and no library for it loaded
    )


def _tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context (TLS 1.2 or later), or None to serve plain HTTP."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise UsageError("--tls-cert and --tls-key go together: give both, or neither")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise UsageError(f"cannot use {cert} and {key} for TLS: {exc}") from exc
    return context


def _program(invoked: Path) -> str:
    """How to call this same `pli` again: plain `pli` when that is what PATH finds."""
    on_path = shutil.which("pli")
    if on_path and Path(on_path).resolve() == invoked.resolve():
        return "pli"
    try:
        return str(invoked.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(invoked)


def operator() -> str:
    """Who runs an administration verb on the server host, as the audit log names them."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, no LOGNAME: a container's anonymous uid
        name = str(os.getuid())
    return f"local:{name}"


@contextlib.contextmanager
def server_database(data: Path, *, existing: bool = False) -> Iterator[tuple[Session, Settings]]:
    """The server's own database, migrated, for the admin verbs run on the server host. With
    `existing`, it must be there already: a check, a report or a purge run on a directory that
    holds none must fail, not make a new, empty database and judge everything against it."""
    settings = Settings.from_env(data)
    if existing and not settings.database_url and not (data / "pli.db").is_file():
        raise ConfigError(
            f"no pli database in {data}: pass the server's --data directory, or set "
            "PLI_DATABASE_URL"
        )
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(database_url(data, settings.database_url))
    try:
        migrate(engine)
        with Database(engine).session() as session:
            yield session, settings
    finally:
        engine.dispose()


_database = server_database


def create_user(data: Path, email: str, password: str, *, is_admin: bool) -> str:
    with _database(data) as (session, settings):
        user = accounts.create_user(
            session, email, password, is_admin=is_admin, now=settings.clock(), actor=operator()
        )
        return user.email


def set_disabled(data: Path, email: str, *, disabled: bool) -> str:
    with _database(data) as (session, settings):
        user = accounts.set_disabled(
            session, email, disabled=disabled, now=settings.clock(), actor=operator()
        )
        return user.email


def service_token(
    data: Path, email: str, scopes: list[str], *, expires: str, create: bool
) -> tuple[str, models.ApiToken]:
    """A new API token for a service account (made first with `create`): the token, shown
    once, and its row."""
    from pli.durations import parse_duration  # noqa: PLC0415
    from pli.server.auth import tokens  # noqa: PLC0415

    ttl = parse_duration(expires)
    with _database(data, existing=not create) as (session, settings):
        now, actor = settings.clock(), operator()
        if create:
            user = accounts.create_service(session, email, scopes, now=now, actor=actor)
        else:
            user = accounts.find_user(session, email)
            if user.service_scopes is None:
                raise UsageError(
                    f"{user.email} is not a service account",
                    hint="people make their own tokens with `pli token create`",
                )
        key = tokens.load_key(data, settings.token_key_hex)
        name = f"service token made by {actor}"
        return tokens.create(session, user, name=name, scopes=scopes, ttl=ttl, now=now, key=key)


def reset_devices(data: Path, email: str) -> int:
    """Remove every device of an account that lost them all (see keys.service.reset): its
    next device is a first device, which every correspondent sees as a key change."""
    from pli.server.keys import service as keys  # noqa: PLC0415

    with _database(data, existing=True) as (session, settings):
        user = accounts.find_user(session, email)
        return keys.reset(session, user, now=settings.clock(), actor=operator())


def create_organisation(data: Path, slug: str, name: str) -> str:
    """Create an organisation, a namespace for groups; its slug."""
    from pli.server.groups import service as group_service  # noqa: PLC0415

    with _database(data, existing=True) as (session, settings):
        org = group_service.create_organisation(
            session, slug, name, now=settings.clock(), actor=operator()
        )
        return org.slug


def create_group(data: Path, name: str, title: str, founder: str) -> str:
    """Create a group whose founder signs its first change; its name."""
    from pli.server.groups import service as group_service  # noqa: PLC0415

    with _database(data, existing=True) as (session, settings):
        record = group_service.create_group(
            session, name, title, founder, now=settings.clock(), actor=operator()
        )
        return record.name


def purge(data: Path, *, dry_run: bool) -> Report:
    """A purge round now, orphans swept too (see pli.server.purge), recorded in the audit log;
    with `dry_run`, what it would delete, and nothing deleted or recorded."""
    from pli.audit import log as audit  # noqa: PLC0415
    from pli.audit.chain import Event  # noqa: PLC0415
    from pli.server import purge as retention  # noqa: PLC0415
    from pli.store.factory import open_blob_store  # noqa: PLC0415

    with _database(data, existing=True) as (session, settings):
        blobs, now = open_blob_store(settings.blob_store, data), settings.clock()
        if dry_run:
            return retention.plan(session, blobs, settings, now=now)
        report = retention.run_in(session, blobs, settings, now=now, sweep=True)
        audit.record(
            session,
            Event.ADMIN_ACTION,
            now=now,
            actor=operator(),
            details={"action": "purge", "items": len(report.items), "bytes": report.bytes},
        )
        session.commit()
        return report


def policy_show(data: Path) -> list[dict[str, object]]:
    from pli.server.admin.routes import policy_out  # noqa: PLC0415

    with _database(data) as (session, settings):
        return [row.model_dump() for row in policy_out(session, settings)]


def policy_set(data: Path, changes: dict[str, str]) -> list[dict[str, object]]:
    from pli.server import policy  # noqa: PLC0415
    from pli.server.admin.routes import policy_out  # noqa: PLC0415

    with _database(data) as (session, settings):
        policy.update(session, settings, changes, now=settings.clock(), actor=operator())
        return [row.model_dump() for row in policy_out(session, settings)]


def alerts_list(data: Path) -> list[dict[str, object]]:
    from pli.server.admin.routes import alerts_out  # noqa: PLC0415

    with _database(data) as (session, _settings):
        return [row.model_dump(mode="json") for row in alerts_out(session)]


def alerts_clear(data: Path, email: str) -> int:
    from pli.server import alerts  # noqa: PLC0415

    with _database(data) as (session, settings):
        user = accounts.find_user(session, email)
        return alerts.clear(
            session, user, now=settings.clock(), actor=operator(), how="administrator"
        )


def exposure(data: Path, since: str, until: str, *, account: str | None, fmt: str) -> str:
    """The breach report of a window (pli.server.admin.exposure), as markdown or JSON."""
    from pli.audit import log as audit  # noqa: PLC0415
    from pli.audit.chain import Event, format_time  # noqa: PLC0415
    from pli.server.admin import exposure as breach  # noqa: PLC0415

    start, end = breach.parse_window(since, until)
    if fmt not in breach.FORMATS:
        raise UsageError(f"--format must be one of {', '.join(breach.FORMATS)}")
    with _database(data, existing=True) as (session, settings):
        found = breach.report(session, start, end, account)
        # Who read whose history, and which part of it, is itself on the record.
        audit.record(
            session,
            Event.ADMIN_ACTION,
            now=settings.clock(),
            actor=operator(),
            subject=account,
            details={"action": "exposure", "since": format_time(start), "until": format_time(end)},
        )
        session.commit()
    return breach.to_json(found) if fmt == "json" else breach.to_markdown(found)
