"""GET /api/v1/admin/users. Every route here first checks the caller's network, then that the
caller is an administrator (an account with is_admin; a token also needs the `admin` scope)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from pli.errors import ForbiddenError
from pli.server import deps
from pli.server.admin import service
from pli.store import models


def admin_network(request: Request, config: deps.Config) -> None:
    """Refuse (403) a caller whose socket peer is outside PLI_ADMIN_NETWORKS. The peer is the
    socket's: no header (X-Forwarded-For, Forwarded) is read here."""
    peer = request.client.host if request.client else None
    if not service.address_allowed(peer, config.admin_networks):
        raise ForbiddenError("the administration API is not reachable from this address")


def administrator(user: deps.Administrator) -> models.User:
    if not user.is_admin:
        raise ForbiddenError("this needs an administrator account")
    return user


Admin = Annotated[models.User, Depends(administrator)]

router = APIRouter(prefix="/api/v1/admin", tags=["admin"], dependencies=[Depends(admin_network)])


class UserOut(BaseModel):
    email: str
    is_admin: bool
    created_at: datetime


@router.get("/users")
def users(_admin: Admin, session: deps.DB) -> list[UserOut]:
    return [
        UserOut(email=u.email, is_admin=u.is_admin, created_at=u.created_at)
        for u in service.list_users(session)
    ]
