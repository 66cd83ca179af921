"""Entry points for the server-side verbs: `pli serve` and `pli admin …`."""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from pli.server.auth import service as accounts
from pli.server.config import Settings
from pli.store.db import Database, database_url, make_engine, migrate


def serve(data: Path, host: str, port: int, *, announce: Callable[[str], None]) -> None:
    import uvicorn  # noqa: PLC0415  (the web stack is loaded only to serve)

    from pli.server.app import create_app  # noqa: PLC0415

    settings = Settings.from_env(data)
    app = create_app(settings)
    url = f"http://{host}:{port}"
    where = "PostgreSQL" if settings.database_url else f"SQLite in {data}"
    announce(f"pli is serving on {url} (metadata: {where}; blobs: {data / 'blobs'})")
    pli = _program()
    announce(f"create the first account with:  {pli} admin create-user EMAIL --data {data} --admin")
    announce(f"then, on a client:               {pli} login {url} --email EMAIL")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        timeout_keep_alive=30,
        h11_max_incomplete_event_size=64 * 1024,
    )


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


def create_user(data: Path, email: str, password: str, *, is_admin: bool) -> str:
    settings = Settings.from_env(data)
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(database_url(data, settings.database_url))
    try:
        migrate(engine)
        with Database(engine).session() as session:
            user = accounts.create_user(
                session, email, password, is_admin=is_admin, now=settings.clock()
            )
            return user.email
    finally:
        engine.dispose()
