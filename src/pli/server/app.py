"""The ASGI application: `create_app(settings)` wires stores, routes and error handling."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from pli import __version__
from pli.audit import checkpointer
from pli.server import deps, memory, metrics, notify, problems, purge, webapp
from pli.server.admin.routes import router as admin_router
from pli.server.auth import tokens
from pli.server.auth.routes import router as auth_router
from pli.server.config import Settings
from pli.server.groups.routes import router as groups_router
from pli.server.keys import service as keys_service
from pli.server.keys.routes import router as keys_router
from pli.server.links import routes as links_routes
from pli.server.ratelimit import LoginGuard, MemoryCounters, PublicLimit, RedisCounters
from pli.server.requests import routes as requests_routes
from pli.server.transfers.routes import router as transfers_router
from pli.server.uploads.routes import router as uploads_router
from pli.store.blobs import BlobStore
from pli.store.db import Database, database_url, make_engine, migrate
from pli.store.factory import open_blob_store

log = logging.getLogger("pli.server")


def create_app(settings: Settings) -> FastAPI:
    settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    engine = make_engine(database_url(settings.data_dir, settings.database_url))
    migrate(engine)
    db = Database(engine)
    blobs = open_blob_store(settings.blob_store, settings.data_dir)
    audit_key = checkpointer.server_key(settings)
    with db.session() as session:
        keys_service.log_existing_devices(session, now=settings.clock())

    quiet = memory.Quiet()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_purge_loop(db, blobs, settings))
        mailer = asyncio.create_task(notify.notify_loop(db, settings)) if settings.smtp else None
        releaser = asyncio.create_task(quiet.run())
        async with checkpointer.running(db, audit_key, settings):
            yield
        releaser.cancel()
        task.cancel()
        if mailer is not None:
            mailer.cancel()
        engine.dispose()

    app = FastAPI(
        title="pli",
        version=__version__,
        summary="End-to-end encrypted file exchange: the server holds ciphertext only.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        responses=problems.RESPONSES,
        max_body_size=settings.max_request_body,  # 413 above; uploads set their own bound
    )
    app.state.settings, app.state.db, app.state.blobs = settings, db, blobs
    app.state.audit_public_key = audit_key.public_b64
    app.state.server_key = audit_key
    app.state.metrics = metrics.Metrics(db, settings.clock)
    app.add_middleware(metrics.Observe, metrics=app.state.metrics)
    app.add_middleware(memory.CountRequests, quiet=quiet)
    app.state.token_key = tokens.load_key(settings.data_dir, settings.token_key_hex)
    counters = RedisCounters(settings.redis_url) if settings.redis_url else MemoryCounters()
    app.state.login_guard = LoginGuard(counters, settings.login_policy)
    app.state.public_limit = PublicLimit(counters, settings.public_rate_limit)
    problems.install(app)
    app.add_middleware(deps.RecordAddress)
    for router in (
        auth_router,
        keys_router,
        groups_router,
        transfers_router,
        uploads_router,
        links_routes.router,
        links_routes.public,
        requests_routes.router,
        requests_routes.public,
        admin_router,
        metrics.router,
        webapp.router(webapp.load(settings.web_dist or webapp.DIST)),
    ):
        app.include_router(router)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def _purge_loop(db: Database, blobs: BlobStore, settings: Settings) -> None:
    while True:
        try:
            await run_in_threadpool(_purge_once, db, blobs, settings)
        except Exception:  # a failed round must not stop the next one
            log.exception("purge failed")
        await asyncio.sleep(settings.purge_interval)


def _purge_once(db: Database, blobs: BlobStore, settings: Settings) -> None:
    purge.run(db, blobs, settings, now=settings.clock())
