"""Prometheus metrics, at GET /metrics: administrators only, from PLI_ADMIN_NETWORKS only.

Each app has a registry of its own (`Metrics.registry`), never prometheus_client's global one,
so that several apps in one process (as in tests) never share or clash on a metric.

What is read from the database at each scrape is the same whichever instance answers:

    pli_transfers{state}            transfers by state: uploading, sealed, revoked, expired,
                                    exhausted (metadata outlives blobs: ended ones still count)
    pli_stored_bytes                ciphertext of the finished files still stored
    pli_purge_lag_seconds           how long ago the oldest transfer still uploading or sealed
                                    expired (0 when none has): the purge is behind when it grows
    pli_failed_logins_total         refused logins, from the audit log
    pli_alerts_total                alerts raised, from the audit log

What this process counts itself starts from 0 at each start and covers the requests this
instance served only; sum it across instances:

    pli_bytes_received_total        upload ciphertext written to the blob store
    pli_bytes_sent_total            blob ciphertext sent to downloaders (accounts and links)
    pli_http_request_duration_seconds{method,route,status}
                                    time to the end of each response's body

Label values come from short fixed sets: a route's template (`/api/v1/transfers/{transfer_id}`),
never the path asked for, so no id, token or address ever becomes a label value; a method
outside the standard ones, and a path no route matched, are both "other".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from sqlalchemy import case, distinct, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pli.audit.chain import Event
from pli.server.admin.routes import Admin, admin_network
from pli.store import models
from pli.store.db import Database

STATES = ("uploading", "sealed", "revoked", "expired", "exhausted", "received")
_PURGED_ON_EXPIRY = ("uploading", "sealed")  # what `transfers.purge_expired` ends
_COUNTED_EVENTS = {
    Event.AUTH_LOGIN_FAILED: ("pli_failed_logins", "Logins refused, from the audit log."),
    Event.ALERT_RAISED: ("pli_alerts", "Alerts raised, from the audit log."),
}
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# Up to 15 minutes: a download of many gigabytes is one request.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)


class Metrics:
    """One app's registry: its counters, its request histogram and the database collector."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.registry = CollectorRegistry()
        self.received = Counter(
            "pli_bytes_received",
            "Upload ciphertext written to the blob store by this process.",
            registry=self.registry,
        )
        self.sent = Counter(
            "pli_bytes_sent",
            "Blob ciphertext sent to downloaders by this process.",
            registry=self.registry,
        )
        self.duration = Histogram(
            "pli_http_request_duration_seconds",
            "Time from a request's start to the end of its response's body, in this process.",
            ("method", "route", "status"),
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(StoreCollector(db, clock))

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = scope["method"] if scope["method"] in _METHODS else "other"
        route = getattr(scope.get("route"), "path", None)
        template = route if isinstance(route, str) else "other"
        self.duration.labels(method, template, f"{status // 100}xx").observe(seconds)


# --- what is read from the database at each scrape ------------------------------------------


@dataclass(frozen=True)
class _StateRow:
    state: str
    transfers: int
    stored: int
    oldest_expiry: datetime | None


_STORED = case((models.TransferFile.blob_key.is_not(None), models.TransferFile.size), else_=0)
_BY_STATE = (
    select(
        models.Transfer.state,
        func.count(distinct(models.Transfer.id)),
        func.sum(_STORED),
        func.min(models.Transfer.expires_at),
    )
    .outerjoin(models.TransferFile, models.TransferFile.transfer_id == models.Transfer.id)
    .group_by(models.Transfer.state)
)
_EVENTS = (
    select(models.AuditEntry.event, func.count())
    .where(models.AuditEntry.event.in_([str(event) for event in _COUNTED_EVENTS]))
    .group_by(models.AuditEntry.event)
)


class StoreCollector:
    """The metrics read from the database: two grouped queries per scrape."""

    def __init__(self, db: Database, clock: Callable[[], datetime]) -> None:
        self.db, self.clock = db, clock

    def describe(self) -> Iterable[Metric]:
        """The families `collect` yields, made from no rows: registering this collector then
        runs no query."""
        return self._families([], {}, self.clock())

    def collect(self) -> Iterable[Metric]:
        with self.db.session() as session:
            rows = [
                _StateRow(state, int(count), int(stored or 0), oldest)  # PostgreSQL: Decimal
                for state, count, stored, oldest in session.execute(_BY_STATE)
            ]
            counts = {event: int(count) for event, count in session.execute(_EVENTS)}
        return self._families(rows, counts, self.clock())

    @staticmethod
    def _families(rows: list[_StateRow], counts: dict[str, int], now: datetime) -> list[Metric]:
        return [
            _transfers(rows),
            GaugeMetricFamily(
                "pli_stored_bytes",
                "Ciphertext of the finished files still stored.",
                value=sum(row.stored for row in rows),
            ),
            GaugeMetricFamily(
                "pli_purge_lag_seconds",
                "Seconds since the oldest transfer still uploading or sealed expired; 0 if none.",
                value=_purge_lag(rows, now),
            ),
            *(
                CounterMetricFamily(name, text, value=counts.get(str(event), 0))
                for event, (name, text) in _COUNTED_EVENTS.items()
            ),
        ]


def _transfers(rows: list[_StateRow]) -> GaugeMetricFamily:
    family = GaugeMetricFamily("pli_transfers", "Transfers by state.", labels=["state"])
    found = {row.state: row.transfers for row in rows}
    for state in STATES:
        family.add_metric([state], found.get(state, 0))
    return family


def _purge_lag(rows: list[_StateRow], now: datetime) -> float:
    # The oldest expiry of a state is that of its oldest overdue transfer, if it has any.
    overdue = [
        row.oldest_expiry
        for row in rows
        if row.state in _PURGED_ON_EXPIRY
        and row.oldest_expiry is not None
        and row.oldest_expiry <= now
    ]
    return (now - min(overdue)).total_seconds() if overdue else 0.0


# --- what this process counts ---------------------------------------------------------------

# The metrics of the app serving the current request, set by `Observe` around each request (as
# `pli.audit.log.at_address` is): code far from the request counts without being handed them.
_serving: ContextVar[Metrics | None] = ContextVar("pli_metrics", default=None)


def received(size: int) -> None:
    """Count `size` bytes an upload wrote to the blob store."""
    metrics = _serving.get()
    if metrics is not None:
        metrics.received.inc(size)


def counted(body: Iterator[bytes]) -> Iterator[bytes]:
    """`body`, counting each chunk as sent once the server asks for the next: a chunk a
    disconnected client never took is not counted."""
    metrics = _serving.get()
    return body if metrics is None else _counting(body, metrics.sent)


def _counting(body: Iterator[bytes], sent: Counter) -> Iterator[bytes]:
    try:
        for chunk in body:
            yield chunk
            sent.inc(len(chunk))
    finally:
        close = getattr(body, "close", None)  # the store's file handle, at once
        if callable(close):
            close()


class Observe:
    """Times each HTTP request to the end of its response, and makes this app's metrics the
    ones the request counts into. Plain ASGI, not `BaseHTTPMiddleware`: the app runs in this
    task, so the context variable set here reaches it, and streamed bodies pass untouched."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app fails before answering

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        token, started = _serving.set(self.metrics), time.perf_counter()
        try:
            await self.app(scope, receive, sending)
        finally:
            _serving.reset(token)
            # The router has set the route it chose in the scope by now.
            self.metrics.observe(scope, status, time.perf_counter() - started)


# --- the route ------------------------------------------------------------------------------

router = APIRouter(tags=["metrics"], dependencies=[Depends(admin_network)])
_EXPOSITION: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The metrics, in the Prometheus text format",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}


@router.get("/metrics", response_class=PlainTextResponse, responses=_EXPOSITION)
def scrape(_admin: Admin, request: Request) -> Response:
    """This instance's metrics, for an administrator on PLI_ADMIN_NETWORKS (a Prometheus
    server scraping with an API token of scope `admin`)."""
    metrics: Metrics = request.app.state.metrics
    return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)
