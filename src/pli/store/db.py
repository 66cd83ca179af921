"""Engines, sessions and migrations for SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from pli.errors import ConfigError, UsageError

_MIGRATIONS = Path(__file__).with_name("migrations")


def database_url(data_dir: Path, env_url: str | None) -> str:
    """`PLI_DATABASE_URL` if set (a plain postgresql:// URL is accepted), else SQLite in DIR."""
    if not env_url:
        return f"sqlite:///{data_dir / 'pli.db'}"
    for prefix in ("postgresql://", "postgres://"):
        if env_url.startswith(prefix):
            return "postgresql+psycopg://" + env_url[len(prefix) :]
    if env_url.startswith(("postgresql+psycopg://", "sqlite:///")):
        return env_url
    raise ConfigError("PLI_DATABASE_URL must be a postgresql:// URL")


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    event.listen(engine, "before_cursor_execute", _refuse_nul)
    return engine


def _refuse_nul(
    _conn: Any, _cursor: Any, _statement: str, parameters: Any, _context: Any, _many: bool
) -> None:
    """PostgreSQL cannot store U+0000 in text and fails the query with a server error: any
    client text that reaches a query with one is refused as a bad request, on both backends."""
    rows = parameters if isinstance(parameters, list | tuple) else [parameters]
    for row in rows:
        values = (
            row.values() if isinstance(row, dict) else row if isinstance(row, list | tuple) else ()
        )
        if any(isinstance(v, str) and "\x00" in v for v in values):
            raise UsageError("text cannot contain NUL characters")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def head_revision() -> str:
    """The newest migration's revision: migrations are numbered 0001, 0002, … in one line."""
    return max(p.name[:4] for p in (_MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))


def at_head(engine: Engine) -> bool:
    """Whether the database is already at the newest migration: then a start loads nothing
    of Alembic (some 15 MiB a server would keep for nothing)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return False
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars()
        return list(found) == [head_revision()]


def migrate_apart(url: str) -> None:
    """`migrate`, in a process of its own when there is something to do: Alembic then never
    loads in the caller (a server that would keep it for its whole life). The URL, which may
    hold a password, goes through a pipe, not the command line."""
    engine = make_engine(url)
    try:
        if at_head(engine):
            return
    except OperationalError as exc:
        raise ConfigError(
            f"the database cannot be opened: {exc.orig}",
            hint="check PLI_DATABASE_URL, or that the data directory is writable",
        ) from None
    finally:
        engine.dispose()
    done = subprocess.run(  # this interpreter, a fixed module, no shell
        [sys.executable, "-m", "pli.store.migrate"],
        input=url.encode("utf-8"),
        capture_output=True,
        check=False,
        timeout=3600,
    )
    if done.returncode != 0:
        lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ConfigError(
            f"the database could not be migrated: {lines[-1] if lines else done.returncode}",
            hint="the database was left as it was; check that it is reachable and writable",
        )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; run at every start."""
    if at_head(engine):
        return
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


class Database:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions() as session:
            yield session
