"""What the tests of share links and file requests share: accounts, blobs, sealed links and
open requests made through the services, and the statements a call runs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from pli.server import policy
from pli.server.auth import service as auth
from pli.server.config import Settings
from pli.server.links import service as links
from pli.server.requests import service as requests
from pli.server.transfers import service as transfers
from pli.store import models
from pli.store.blobs import BlobStore

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# Server settings and policy as a server without configuration has them (no mail, no limits).
SETTINGS = Settings(data_dir=Path("pli-data"))
RULES = policy.defaults(SETTINGS)
SENDER = "a-sender-token-derived-from-the-url-secret"  # what holders of a request's URL show
DAY = timedelta(days=1)


def user(session: Session, name: str) -> models.User:
    made = auth.create_user(
        session, f"{name}@example.org", "a long enough password", is_admin=False, now=NOW
    )
    session.add(models.Device(id=transfers.new_id(), user_id=made.id, bundle="{}", created_at=NOW))
    session.commit()
    return made


def blob(blobs: BlobStore, data: bytes) -> str:
    """A complete blob holding `data`: its key."""
    token = blobs.begin()
    writer = blobs.part(token, 1, 0)
    writer.write(data)
    return blobs.complete(token, [writer.commit()])


def sealed_link(
    session: Session,
    blobs: BlobStore,
    owner: models.User,
    *,
    max_downloads: int | None = None,
    lasts: timedelta = DAY,
    data: bytes = b"ciphertext",
) -> str:
    """A link of one file holding `data`, uploaded and sealed: its id."""
    made = links.create(session, owner, 1, lasts, max_downloads, now=NOW, max_expiry=30 * DAY)
    row = made.view.files[0]
    transfers.attach_blob(session, blobs, row, blob(blobs, data), len(data))
    transfers.seal(session, owner, made.link.id, b"sealed manifest", now=NOW, settings=SETTINGS)
    return made.link.id


def open_request(
    session: Session,
    owner: models.User,
    *,
    max_files: int = 10,
    max_bytes: int = 1000,
    lasts: timedelta = DAY,
) -> str:
    """A sealed (open) file request: its id."""
    made = requests.create(
        session,
        owner,
        expires_in=lasts,
        max_files=max_files,
        max_bytes=max_bytes,
        now=NOW,
        max_expiry=30 * DAY,
    )
    requests.seal(session, owner, made.id, sealed(b"document", b"sealed key"), now=NOW)
    return made.id


def sealed(document: bytes, key: bytes, sender: str = SENDER) -> requests.Sealed:
    return requests.Sealed(document, key, sender)


@contextmanager
def statements(session: Session) -> Iterator[list[str]]:
    """The SQL a block runs, with bound values left out (their placeholders stay)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(re.sub(r"\s+", " ", str(args[2])))

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
