"""GET /api/v1/admin/users. Every route here first checks the caller's network, then that the
caller is an administrator (an account with is_admin; a token also needs the `admin` scope)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from pli.errors import ForbiddenError
from pli.server import alerts, deps, policy
from pli.server.admin import service
from pli.server.auth.service import find_user
from pli.server.config import Settings
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


class PolicySettingOut(BaseModel):
    name: str
    value: str = Field(description="as `pli admin policy set NAME=VALUE` takes it")
    overridden: bool = Field(description="false: the server's default")


class PolicyChange(BaseModel):
    changes: dict[str, str] = Field(
        min_length=1, max_length=len(policy.NAMES), description='e.g. {"max_expiry": "14d"}'
    )


def policy_out(session: Session, settings: Settings) -> list[PolicySettingOut]:
    rules, overridden = policy.current(session, settings), policy.overridden(session)
    return [
        PolicySettingOut(
            name=name, value=policy.show(name, getattr(rules, name)), overridden=name in overridden
        )
        for name in policy.NAMES
    ]


@router.get("/policy")
def show_policy(_admin: Admin, session: deps.DB, config: deps.Config) -> list[PolicySettingOut]:
    return policy_out(session, config)


@router.patch("/policy")
def set_policy(
    body: PolicyChange, admin: Admin, session: deps.DB, config: deps.Config
) -> list[PolicySettingOut]:
    """Change settings (a value of "default" removes an override); recorded in the audit log."""
    policy.update(session, config, body.changes, now=config.clock(), actor=admin.email)
    return policy_out(session, config)


class AlertOut(BaseModel):
    account: str
    kind: str
    details: dict[str, str | int | bool]
    raised_at: datetime
    downloads_suspended: bool


def alerts_out(session: Session) -> list[AlertOut]:
    found = []
    for alert in alerts.open_alerts(session):
        user = session.get_one(models.User, alert.user_id)
        found.append(
            AlertOut(
                account=user.email,
                kind=alert.kind,
                details=json.loads(alert.details),
                raised_at=alert.raised_at,
                downloads_suspended=user.downloads_suspended_at is not None,
            )
        )
    return found


@router.get("/alerts")
def list_alerts(_admin: Admin, session: deps.DB) -> list[AlertOut]:
    """Alerts not cleared yet, oldest first."""
    return alerts_out(session)


@router.post("/alerts/{email}/clear")
def clear_alerts(email: str, admin: Admin, session: deps.DB, config: deps.Config) -> int:
    """Clear an account's alerts and lift a suspension of its downloads; the number cleared."""
    user = find_user(session, email)
    return alerts.clear(session, user, now=config.clock(), actor=admin.email, how="administrator")
