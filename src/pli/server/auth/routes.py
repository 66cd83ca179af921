"""Login, logout and who-am-I."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from pli.server import deps
from pli.server.auth import service
from pli.store import models

router = APIRouter(prefix="/api/v1", tags=["auth"])


class LoginRequest(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)


class LoginResponse(BaseModel):
    token: str
    expires_at: datetime
    email: str


class Me(BaseModel):
    email: str
    is_admin: bool


@router.post("/auth/login")
def login(body: LoginRequest, session: deps.DB, config: deps.Config) -> LoginResponse:
    user = service.authenticate(session, body.email, body.password)
    token, expires = service.open_session(session, user, now=config.clock(), ttl=config.session_ttl)
    return LoginResponse(token=token, expires_at=expires, email=user.email)


@router.post("/auth/logout", status_code=204)
def logout(
    auth: Annotated[models.Session, Depends(deps.current_session)], session: deps.DB
) -> None:
    service.close_session(session, auth)


@router.get("/me")
def me(user: deps.User) -> Me:
    return Me(email=user.email, is_admin=user.is_admin)
