"""Dependencies every route shares: the database session and the authenticated caller.

A caller is a `Principal`: a user with either a login session (every scope) or an API token
(only the scopes it was made with). Routes ask for what they need — `Sender`, `Receiver`,
`User` (any caller) or `LoggedIn` (a login session, never a token) — so a route cannot forget
to check a token's scope.

Resumable uploads take an `Uploader`: a user allowed to send, or a guest answering a file
request with the token it was given (`Bearer pli_guest_…`), which reaches that answer only.
Routes without an account where an id is all one has (taking a link's ticket, reading a file
request, reserving room in one) take `public_limit`: a rate limit per client address. What a
ticket or a guest token then opens is not limited: a link or an answer of a thousand files is
thousands of requests, each carrying a 256-bit capability no one guesses.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Receive, Scope, Send

from pli.audit import log as audit_log
from pli.crypto.checkpoints import ServerKey
from pli.errors import AuthError, ForbiddenError, SessionEndedError
from pli.server.auth import recovery, service, tokens
from pli.server.config import Settings
from pli.server.policy import Policy
from pli.server.policy import current as current_policy
from pli.server.ratelimit import LoginGuard, PublicLimit
from pli.server.requests import service as file_requests
from pli.server.transfers.service import Actor, Guest
from pli.store import models
from pli.store.blobs import BlobStore
from pli.store.db import Database


def settings(request: Request) -> Settings:
    value: Settings = request.app.state.settings
    return value


def blobs(request: Request) -> BlobStore:
    value: BlobStore = request.app.state.blobs
    return value


def database(request: Request) -> Database:
    value: Database = request.app.state.db
    return value


def db(request: Request) -> Iterator[Session]:
    with database(request).session() as session:
        yield session


@dataclass(frozen=True)
class Principal:
    user: models.User
    session: models.Session | None  # None when the caller used an API token
    scopes: frozenset[str]


def _bearer(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise SessionEndedError("log in first: this needs a session")
    return token.strip()


def offered_bearer(request: Request) -> str:
    """The bearer token of a request, or "" when there is none: for routes where a missing
    token must cost the same, and be answered the same, as a wrong one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def principal(
    request: Request,
    session: Annotated[Session, Depends(db)],
    config: Annotated[Settings, Depends(settings)],
) -> Principal:
    token, now = _bearer(request), config.clock()
    login: models.Session | None = None
    if token.startswith(tokens.API_TOKEN_PREFIX):
        row = tokens.find(session, token, now=now, key=token_key(request))
        user_id, scopes = row.user_id, frozenset(row.scopes.split())
    else:
        login = service.find_session(session, token, now=now, idle=config.session_idle)
        user_id, scopes = login.user_id, frozenset(tokens.SCOPES)
    user = session.get(models.User, user_id)
    if user is None or user.disabled_at is not None:
        raise AuthError("this account is disabled or no longer exists")
    required = current_policy(session, config).require_2fa
    # A service account has no login, hence no second factor: its token is its one credential.
    is_service = user.service_scopes is not None
    if (
        required
        and not is_service
        and not _enrolling(request)
        and not recovery.methods(session, user)
    ):
        raise ForbiddenError("this server requires a second factor: run `pli 2fa enable` first")
    return Principal(user, login, scopes)


# What an account without the second factor the policy requires may still do: enrol one.
_ENROLMENT = ("/api/v1/me/2fa/", "/api/v1/auth/logout")


def _enrolling(request: Request) -> bool:
    return request.url.path.startswith(_ENROLMENT) or request.url.path in (
        "/api/v1/me",
        "/api/v1/me/2fa",
    )


def client_address(request: Request) -> str:
    """The socket's peer, unless that peer is a trusted proxy: then the nearest address in
    X-Forwarded-For that is not itself a trusted proxy. No header is believed otherwise."""
    peer = request.client.host if request.client else "unknown"
    trusted = [ipaddress.ip_network(n) for n in settings(request).trusted_proxies]
    if not _within(peer, trusted):
        return peer
    forwarded = request.headers.get("x-forwarded-for", "")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _is_address(hop):
            return peer  # not an address: the chain cannot be believed past this point
        if not _within(hop, trusted):
            return hop
    return peer


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


class RecordAddress:
    """ASGI middleware: every audit record written while a request is served carries the
    request's client address (as `client_address` judges it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with audit_log.at_address(client_address(Request(scope))):
            await self.app(scope, receive, send)


def _within(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def login_guard(request: Request) -> LoginGuard:
    value: LoginGuard = request.app.state.login_guard
    return value


def server_key(request: Request) -> ServerKey:
    """The server's own signing key: audit checkpoints and key log tree heads."""
    value: ServerKey = request.app.state.server_key
    return value


def token_key(request: Request) -> bytes:
    value: bytes = request.app.state.token_key
    return value


def uploader(
    request: Request,
    session: Annotated[Session, Depends(db)],
    config: Annotated[Settings, Depends(settings)],
) -> Actor:
    """Who uploads: a guest, by the token of their answer; else a user with scope send."""
    token = _bearer(request)
    if token.startswith(file_requests.GUEST_PREFIX):
        return file_requests.guest(session, token, now=config.clock())
    return require(principal(request, session, config), "send")


def guest(
    request: Request,
    session: Annotated[Session, Depends(db)],
    config: Annotated[Settings, Depends(settings)],
) -> Guest:
    return file_requests.guest(session, _bearer(request), now=config.clock())


def public_limit(request: Request) -> None:
    limit: PublicLimit = request.app.state.public_limit
    limit.check(client_address(request))


def public_base(request: Request) -> str:
    """Where the links and requests of this server are opened: PLI_PUBLIC_URL, else the base
    URL this request came to."""
    return settings(request).public_url or str(request.base_url).rstrip("/")


def rules(
    session: Annotated[Session, Depends(db)], config: Annotated[Settings, Depends(settings)]
) -> Policy:
    """The administrator's policy in force, read for this request."""
    return current_policy(session, config)


def current_user(caller: Annotated[Principal, Depends(principal)]) -> models.User:
    return caller.user


def require(caller: Principal, scope: str) -> models.User:
    if scope not in caller.scopes:
        raise ForbiddenError(f"this API token does not allow '{scope}'")
    return caller.user


def _scoped(scope: str) -> Callable[[Principal], models.User]:
    def check(caller: Annotated[Principal, Depends(principal)]) -> models.User:
        return require(caller, scope)

    return check


def key_holder(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    """A caller that manages its account's devices: a login session, or a service account's
    token (a service has no session: its job publishes and approves its devices)."""
    if caller.session is None and caller.user.service_scopes is None:
        raise ForbiddenError("this needs a login session: API tokens cannot do it")
    return caller


def logged_in(caller: Annotated[Principal, Depends(principal)]) -> Principal:
    if caller.session is None:
        raise ForbiddenError("this needs a login session: API tokens cannot do it")
    return caller


DB = Annotated[Session, Depends(db)]
Config = Annotated[Settings, Depends(settings)]
Blobs = Annotated[BlobStore, Depends(blobs)]
TokenKey = Annotated[bytes, Depends(token_key)]
SigningKey = Annotated[ServerKey, Depends(server_key)]
Guard = Annotated[LoginGuard, Depends(login_guard)]
Caller = Annotated[Principal, Depends(principal)]
User = Annotated[models.User, Depends(current_user)]
Sender = Annotated[models.User, Depends(_scoped("send"))]
Receiver = Annotated[models.User, Depends(_scoped("receive"))]
Administrator = Annotated[models.User, Depends(_scoped("admin"))]
LoggedIn = Annotated[Principal, Depends(logged_in)]
KeyHolder = Annotated[Principal, Depends(key_holder)]
Uploader = Annotated[Actor, Depends(uploader)]
GuestActor = Annotated[Guest, Depends(guest)]
PublicBase = Annotated[str, Depends(public_base)]
OfferedBearer = Annotated[str, Depends(offered_bearer)]
Rules = Annotated[Policy, Depends(rules)]
