"""The newest 50 transfers of a large inbox (and of an outbox), listed through a real
`pli serve` on PostgreSQL while the database holds 10 thousand, then 1 million transfers:
latency percentiles over HTTP, and the plan of the query behind a page.

    .venv/bin/python -m benchmarks.listing --rows 10000 --rows 1000000

The transfers are written straight into the database, in bulk (INSERT ... SELECT over
generate_series), spread over many users. One user, bob, logged in through the real CLI,
receives one transfer in 20 and sends one in 25; among his, some are revoked, some past their
expiry and some still uploading, as on a live server. Each size adds to the same database.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable
from tests.integration.conftest import make_user, start_server, stop_server
from tests.postgres import temporary_database

from pli.server.transfers import service
from pli.store import models
from pli.store.db import database_url, make_engine

PAGE = 50
SPAN = timedelta(days=20)  # creation times spread over the last 20 days
USERS_PER = 50  # one user for every 50 transfers of the largest size
Figures = dict[str, float | int | str | bool]


def run(
    rows: Sequence[int], workdir: Path, *, requests: int = 300, warmup: int = 50
) -> dict[int, Figures]:
    """For each size in `rows` (ascending, each added to the same database), a flat dict of
    figures: the fill time; for the first inbox page, the next one (through its cursor) and
    the first outbox page, p50 and p99 latencies and the server's CPU time per request, in
    milliseconds; the EXPLAIN ANALYZE of the inbox and outbox queries, and whether the inbox's
    is a pure index scan; the machine's load average while measuring."""
    sizes = sorted(rows)
    with temporary_database("pli_bench") as url:
        server = start_server(workdir, url)
        engine = make_engine(database_url(workdir, url))
        try:
            bob = make_user(server, workdir, "bob", keys=False)
            token = (bob.home / "session").read_text().strip()
            fill = _Fill(engine, sizes[-1], bob.email)
            figures: dict[int, Figures] = {}
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=60) as api:
                done = 0
                for size in sizes:
                    start = time.perf_counter()
                    fill.add(done + 1, size)
                    fill_s = time.perf_counter() - start
                    done = size
                    figures[size] = {
                        "rows": size,
                        "fill_s": round(fill_s, 2),
                        **fill.counts(),
                        **_latencies(api, server.process.pid, requests, warmup),
                        **_plans(engine, fill.bob_id),
                    }
        finally:
            engine.dispose()
            stop_server(server)
    return figures


class _Fill:
    """Transfers number `first` to `last` of a database meant to reach `largest`: transfer g
    is created at a time that grows with g, so each size's newest transfers are new ones."""

    def __init__(self, engine: sa.Engine, largest: int, bob: str) -> None:
        self.engine = engine
        self.largest = largest
        self.users = max(20, largest // USERS_PER)
        self.start = datetime.now(UTC) - timedelta(minutes=1)
        self.step = SPAN.total_seconds() / largest
        with engine.begin() as conn:
            g = sa.func.generate_series(1, self.users).column_valued("g")
            email = sa.func.concat("user", g, "@bench.example")
            made = sa.select(email, sa.literal("x"), sa.false(), sa.func.now())
            columns = ["email", "password_hash", "is_admin", "created_at"]
            conn.execute(sa.insert(models.User).from_select(columns, made))
            self.bob_id = conn.execute(
                sa.select(models.User.id).where(models.User.email == bob)
            ).scalar_one()
            self.first_user = conn.execute(
                sa.select(sa.func.min(models.User.id)).where(models.User.id != self.bob_id)
            ).scalar_one()

    def _user(self, g: Any, salt: int, offset: int) -> Any:
        return self.first_user + (sa.cast(g, sa.BigInteger) * salt + offset) % self.users

    def _created(self, g: Any) -> Any:
        # Pairs of transfers share a creation time: pages must break the ties.
        seconds = ((self.largest - g) // 2) * 2 * self.step
        return sa.literal(self.start, models.UTCDateTime()) - sa.func.make_interval(
            0, 0, 0, 0, 0, 0, seconds
        )

    def add(self, first: int, last: int) -> None:
        g = sa.func.generate_series(first, last).column_valued("g")
        transfer_id = sa.func.md5(sa.cast(g, sa.Text))
        created = self._created(g)
        expires = created + sa.case(
            (g % 7 == 0, sa.func.make_interval(0, 0, 0, 0, 1)),  # an hour
            else_=sa.func.make_interval(0, 0, 0, 30),  # 30 days
        )
        state = sa.case(
            (g % 200 == 20, "revoked"),
            (g % 100 == 40, "uploading"),
            # What the server's purge leaves of a transfer past its expiry; those that lapse
            # while the benchmark runs are still sealed, as between two purges.
            (expires <= sa.literal(datetime.now(UTC), models.UTCDateTime()), "expired"),
            else_="sealed",
        )
        transfers = sa.select(
            transfer_id,
            sa.case((g % 25 == 1, self.bob_id), else_=self._user(g, 7919, 0)),
            state,
            created,
            expires,
            sa.case((state.in_(["sealed", "expired"]), created), else_=sa.null()),
            sa.case(
                (state == "sealed", sa.func.decode(sa.func.repeat(transfer_id, 32), "hex")),
                else_=sa.null(),
            ),
        )
        recipient = sa.case((g % 20 == 0, self.bob_id), else_=self._user(g, 104729, 3))
        recipients = sa.union_all(
            sa.select(transfer_id, recipient, created),
            sa.select(transfer_id, self._user(g, 31, 7), created).where(g % 10 == 3),
        )
        digest = sa.func.concat(transfer_id, transfer_id)
        files = []
        for position, where in ((0, sa.true()), (1, g % 4 == 0)):  # a second file in 4
            name = sa.func.md5(sa.func.concat(transfer_id, position))
            at = sa.literal(position)
            files.append(sa.select(name, transfer_id, at, name, 1000 + g, digest).where(where))
        transfer_columns = ["id", "sender_id", "state", "created_at", "expires_at"]
        transfer_columns += ["sealed_at", "manifest"]
        with self.engine.begin() as conn:
            # The rows are consistent by construction: the per-row foreign-key checks, which
            # would double the load time, are skipped in this transaction (as pg_restore
            # --disable-triggers does). This needs a superuser, as the test suite's `root` is.
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            conn.execute(sa.insert(models.Transfer).from_select(transfer_columns, transfers))
            conn.execute(
                postgresql.insert(models.TransferRecipient)
                # `direct` takes the column's server default: every recipient named directly
                .from_select(
                    ["transfer_id", "user_id", "created_at"], recipients, include_defaults=False
                )
                .on_conflict_do_nothing()  # a second recipient may be the first one again
            )
            conn.execute(
                sa.insert(models.TransferFile).from_select(
                    ["id", "transfer_id", "position", "blob_key", "size", "sha256"],
                    sa.union_all(*files),
                )
            )
        with self.engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(sa.text("VACUUM ANALYZE"))

    def counts(self) -> Figures:
        with Session(self.engine) as session:
            inbox = session.scalar(
                sa.select(sa.func.count())
                .select_from(models.TransferRecipient)
                .where(models.TransferRecipient.user_id == self.bob_id)
            )
            outbox = session.scalar(
                sa.select(sa.func.count())
                .select_from(models.Transfer)
                .where(models.Transfer.sender_id == self.bob_id)
            )
        return {"users": self.users + 1, "inbox_rows": inbox or 0, "outbox_rows": outbox or 0}


def _latencies(api: httpx.Client, server_pid: int, requests: int, warmup: int) -> Figures:
    """Latency percentiles of each page as the client sees it, and the server's own CPU time
    per request (which, unlike latency, other work on the machine hardly changes)."""
    first = _page(api, {"box": "inbox", "limit": PAGE})
    if len(first["items"]) != PAGE or first["next_cursor"] is None:
        raise RuntimeError("the inbox should fill more than one page")
    following: dict[str, str | int] = {"box": "inbox", "limit": PAGE}
    following["cursor"] = first["next_cursor"]
    figures: Figures = {}
    queries: list[tuple[str, dict[str, str | int]]] = [
        ("inbox", {"box": "inbox", "limit": PAGE}),
        ("inbox_next", following),
        ("outbox", {"box": "outbox", "limit": PAGE}),
    ]
    for label, params in queries:
        for _ in range(warmup):
            _page(api, params)
        samples = []
        cpu = _cpu_seconds(server_pid)
        for _ in range(requests):
            start = time.perf_counter()
            answer = _get(api, params)  # the whole exchange: the body is read too
            samples.append((time.perf_counter() - start) * 1000)
            if not answer.json()["items"]:  # parsed outside the timed part
                raise RuntimeError("a page came back empty")
        cuts = statistics.quantiles(samples, n=100, method="inclusive")
        used = (_cpu_seconds(server_pid) - cpu) * 1000 / requests
        figures[f"{label}_p50_ms"] = round(statistics.median(samples), 2)
        figures[f"{label}_p99_ms"] = round(cuts[98], 2)
        figures[f"{label}_server_cpu_ms"] = round(used, 2)
    figures["load_average"] = round(os.getloadavg()[0], 2)  # other work on the machine
    return figures


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _get(api: httpx.Client, params: dict[str, str | int]) -> httpx.Response:
    answer = api.get("/api/v1/transfers", params=params)
    if answer.status_code != 200:
        raise RuntimeError(f"the listing answered {answer.status_code}: {answer.text}")
    return answer


def _page(api: httpx.Client, params: dict[str, str | int]) -> dict[str, Any]:
    page: dict[str, Any] = _get(api, params).json()
    return page


class _Explain(Executable, ClauseElement):
    """EXPLAIN (ANALYZE, BUFFERS) of a statement, run as the statement itself would be."""

    inherit_cache = False

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement


@compiles(_Explain, "postgresql")
def _explain_sql(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN (ANALYZE, BUFFERS) " + compiler.process(element.statement, **kw)


def _plans(engine: sa.Engine, bob_id: int) -> Figures:
    """The plans of the queries behind the first inbox and outbox pages, exactly as the
    service builds them."""
    figures: Figures = {}
    with Session(engine) as session:
        bob = session.get_one(models.User, bob_id)
        for box in ("inbox", "outbox"):
            query = service.listing_query(bob, box, now=datetime.now(UTC), after=None, limit=PAGE)
            plan = "\n".join(str(line) for line in session.scalars(_Explain(query)))
            figures[f"{box}_plan"] = plan
        index = "ix_transfer_recipients_user_created"
        inbox_plan = str(figures["inbox_plan"])
        figures["index_scan"] = index in inbox_plan and "Seq Scan" not in inbox_plan
    return figures


def table(figures: dict[int, Figures]) -> str:
    lines = [
        "| transfers | bob's inbox | fill | inbox p50 | inbox p99 | next page p50 | next page p99 "
        "| outbox p50 | outbox p99 | server CPU per inbox page | index scan | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, f in sorted(figures.items()):
        lines.append(
            f"| {size:,} | {f['inbox_rows']:,} | {f['fill_s']} s | {f['inbox_p50_ms']} ms "
            f"| {f['inbox_p99_ms']} ms | {f['inbox_next_p50_ms']} ms | {f['inbox_next_p99_ms']} ms "
            f"| {f['outbox_p50_ms']} ms | {f['outbox_p99_ms']} ms | {f['inbox_server_cpu_ms']} ms "
            f"| {f['index_scan']} | {f['load_average']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--rows", type=int, action="append", help="transfers in the database (repeatable)"
    )
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pli-bench-") as tmp:
        figures = run(
            args.rows or [10_000, 1_000_000],
            Path(tmp),
            requests=args.requests,
            warmup=args.warmup,
        )
    print(table(figures))
    for size, f in sorted(figures.items()):
        print(f"\nInbox query at {size:,} transfers:\n{f['inbox_plan']}")
        print(f"\nOutbox query at {size:,} transfers:\n{f['outbox_plan']}")


if __name__ == "__main__":
    main()
