"""Entry points for the server-side verbs: `pli serve` and `pli admin …`."""

from __future__ import annotations

import contextlib
import logging
import shutil
import ssl
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy.orm import Session

from pli.errors import UsageError
from pli.server.auth import service as accounts
from pli.server.config import Settings
from pli.store.db import Database, database_url, make_engine, migrate


def serve(
    data: Path,
    host: str,
    port: int,
    *,
    announce: Callable[[str], None],
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> None:
    import uvicorn  # noqa: PLC0415  (the web stack is loaded only to serve)

    from pli.server import security  # noqa: PLC0415
    from pli.server.app import create_app  # noqa: PLC0415
    from pli.server.protocol import protocol_for  # noqa: PLC0415

    tls = _tls_context(tls_cert, tls_key)
    settings = Settings.from_env(data)
    app = create_app(settings)
    url = f"{'https' if tls else 'http'}://{host}:{port}"
    where = "PostgreSQL" if settings.database_url else f"SQLite in {data}"
    blobs = settings.blob_store or data / "blobs"
    announce(f"pli is serving on {url} (metadata: {where}; blobs: {blobs})")
    pli = _program()
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


def _program() -> str:
    """How to call this same `pli` again: plain `pli` when that is what PATH finds."""
    invoked = Path(sys.argv[0])
    on_path = shutil.which("pli")
    if on_path and Path(on_path).resolve() == invoked.resolve():
        return "pli"
    try:
        return str(invoked.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(invoked)


@contextlib.contextmanager
def _database(data: Path) -> Iterator[tuple[Session, Settings]]:
    """The server's own database, migrated, for the admin verbs run on the server host."""
    settings = Settings.from_env(data)
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(database_url(data, settings.database_url))
    try:
        migrate(engine)
        with Database(engine).session() as session:
            yield session, settings
    finally:
        engine.dispose()


def create_user(data: Path, email: str, password: str, *, is_admin: bool) -> str:
    with _database(data) as (session, settings):
        user = accounts.create_user(
            session, email, password, is_admin=is_admin, now=settings.clock()
        )
        return user.email


def set_disabled(data: Path, email: str, *, disabled: bool) -> str:
    with _database(data) as (session, settings):
        return accounts.set_disabled(session, email, disabled=disabled, now=settings.clock()).email
