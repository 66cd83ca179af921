"""Dependencies every route shares: the database session and the authenticated caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from pli.errors import AuthError
from pli.server.auth.service import token_hash
from pli.server.config import Settings
from pli.store import models
from pli.store.blobs import BlobStore
from pli.store.db import Database


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def blobs(request: Request) -> BlobStore:
    value: BlobStore = request.app.state.blobs
    return value


def db(request: Request) -> Iterator[Session]:
    database: Database = request.app.state.db
    with database.session() as session:
        yield session


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise AuthError("log in first: this needs a session")
    return token.strip()


def current_session(
    request: Request,
    session: Annotated[Session, Depends(db)],
    config: Annotated[Settings, Depends(settings)],
) -> models.Session:
    # Looked up by the hash of a 256-bit random token: no timing on the secret itself.
    stmt = select(models.Session).where(models.Session.token_hash == token_hash(_bearer(request)))
    found = session.scalars(stmt).first()
    if found is None or found.expires_at <= config.clock():
        raise AuthError("your session has expired or is invalid: log in again")
    return found


def current_user(
    auth: Annotated[models.Session, Depends(current_session)],
    session: Annotated[Session, Depends(db)],
) -> models.User:
    user = session.get(models.User, auth.user_id)
    if user is None:
        raise AuthError("your session has expired or is invalid: log in again")
    return user


DB = Annotated[Session, Depends(db)]
User = Annotated[models.User, Depends(current_user)]
Config = Annotated[Settings, Depends(settings)]
Blobs = Annotated[BlobStore, Depends(blobs)]
