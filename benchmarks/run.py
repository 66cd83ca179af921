"""The whole suite: every part on one stage, one table, written with the machine's description.
`make bench` runs `python -m benchmarks --output benchmarks/RESULTS.md`; `--small` is a quick
check at the sizes the test suite uses."""

from __future__ import annotations

import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks import listing
from benchmarks.commands import fixed_costs, round_trips
from benchmarks.common import MIB, make_payload
from benchmarks.concurrency import concurrency
from benchmarks.machine import Machine, this_machine
from benchmarks.report import LEGEND, Row, ratio, table
from benchmarks.rig import Rig, running_rig
from benchmarks.transfer import client_encryption, memory, send_get, server_io
from benchmarks.web_app import web_app


@dataclass(frozen=True)
class Plan:
    size_mib: int = 1024  # send + get, client encryption, server ingest and egress
    memory_mib: tuple[int, ...] = (100, 1024, 4096)
    rounds: int = 3  # timed rounds of each comparison, alternating sides
    warmup: int = 1  # untimed rounds first
    web_rounds: int = 1  # the same for the web app, whose round at 1 GiB takes minutes
    web_warmup: int = 0
    round_trips: int = 15
    fixed_times: int = 5
    clients: int = 50
    client_mib: int = 50
    listing_counts: tuple[int, ...] = (10_000, 1_000_000)
    listing_requests: int = 300
    listing_warmup: int = 50


FULL = Plan()
# Every part, at sizes the test suite can afford: it proves the parts run, not how fast.
SMALL = Plan(
    size_mib=4,
    memory_mib=(1, 4),
    rounds=1,
    warmup=0,
    round_trips=2,
    fixed_times=1,
    clients=3,
    client_mib=4,
    listing_counts=(2_000,),  # bob receives one in 20: two pages
    listing_requests=20,
    listing_warmup=5,
)

Part = Callable[[Rig, Plan, Path], list[Row]]


def _send_get(rig: Rig, plan: Plan, payload: Path) -> list[Row]:
    return send_get(rig, payload, rounds=plan.rounds, warmup=plan.warmup).rows()


def _web_app(rig: Rig, plan: Plan, payload: Path) -> list[Row]:
    return web_app(rig, payload, rounds=plan.web_rounds, warmup=plan.web_warmup).rows()


def _encryption(rig: Rig, plan: Plan, payload: Path) -> list[Row]:
    return client_encryption(rig, payload, rounds=plan.rounds, warmup=plan.warmup).rows()


def _server(rig: Rig, plan: Plan, payload: Path) -> list[Row]:
    return server_io(rig, payload, rounds=plan.rounds, warmup=plan.warmup).rows()


def _memory(rig: Rig, plan: Plan, payload: Path) -> list[Row]:
    return memory(rig, [m * MIB for m in plan.memory_mib]).rows()


def _small(rig: Rig, plan: Plan, payload: Path) -> list[Row]:
    trips = round_trips(rig, count=plan.round_trips, warmup=plan.warmup)
    return trips.rows() + fixed_costs(rig, times=plan.fixed_times).rows()


def _concurrency(rig: Rig, plan: Plan, payload: Path) -> list[Row]:
    figures = concurrency(
        rig, clients=plan.clients, size_mib=plan.client_mib, rounds=max(plan.rounds, 1)
    )
    return figures.rows()


def _healthz_latency(rig: Rig, requests: int, warmup: int) -> tuple[float, float]:
    """p50 and p99, in ms, of `GET /healthz` on `pli serve`: a request that does nothing, the
    floor under any listing. Percentiles computed as benchmarks/listing.py computes them."""
    samples = []
    with httpx.Client(base_url=rig.server.url, timeout=60) as api:
        for i in range(warmup + requests):
            start = time.perf_counter()
            api.get("/healthz").raise_for_status()
            if i >= warmup:
                samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples), statistics.quantiles(samples, n=100, method="inclusive")[98]


def listing_rows(rig: Rig, plan: Plan, payload: Path) -> list[Row]:
    """Inbox listing latency, from benchmarks/listing.py (its own server, on PostgreSQL, filled
    in bulk up to each size), beside the latency of a request that does nothing."""
    workdir = rig.workdir / "listing"
    workdir.mkdir()
    found = listing.run(
        plan.listing_counts,
        workdir,
        requests=plan.listing_requests,
        warmup=plan.listing_warmup,
    )
    floor_p50, floor_p99 = _healthz_latency(rig, plan.listing_requests, plan.listing_warmup)
    rows = []
    for count, f in sorted(found.items()):
        scan = " (index scan)" if f.get("index_scan") is True else ""
        for page, label in (("inbox", f"first page{scan}"), ("inbox_next", "next page")):
            p50, p99 = float(f[f"{page}_p50_ms"]), float(f[f"{page}_p99_ms"])
            rows.append(
                Row(
                    "inbox listing",
                    f"{count:,} transfers, {label}: p50 / p99",
                    f"{p50:.1f} / {p99:.1f} ms",
                    f"{floor_p50:.1f} / {floor_p99:.1f} ms (GET /healthz)",
                    ratio(floor_p50 / p50),
                )
            )
    return rows


PARTS: list[tuple[str, Part]] = [
    ("send + get", _send_get),
    ("web app", _web_app),
    ("client encryption", _encryption),
    ("server alone", _server),
    ("peak memory", _memory),
    ("small files and fixed costs", _small),
    ("concurrency", _concurrency),
    ("inbox listing", listing_rows),
]


@dataclass(frozen=True)
class Results:
    plan: Plan
    machine: Machine
    rows: list[Row]
    started: datetime
    minutes: float
    failed: list[str]
    load: tuple[float, float, float]  # the load average when the run began

    def markdown(self) -> str:
        sizes = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(self.plan).items())
        return "\n".join(
            [
                "# Benchmarks",
                "",
                f"`make bench`, {self.started:%Y-%m-%d %H:%M} UTC, {self.minutes:.1f} minutes "
                f"({sizes}).",
                "",
                self.machine.markdown(),
                "- load average when the run began (1, 5, 15 min): "
                + ", ".join(f"{x:.2f}" for x in self.load),
                "",
                table(self.rows),
                "",
                LEGEND,
                "",
                NOTES,
            ]
        )


NOTES = """How each figure is taken:

- Everything runs on loopback on this one machine: `pli serve` (SQLite, local blob store) and
  nginx (started by the benchmark with its own configuration: WebDAV PUT, static GET, sendfile)
  compete with their clients for the same cores. Before each part, what the previous one wrote
  is synced to disk and the machine rests for two seconds.
- send + get: the real `pli send` and `pli get` commands, process start-up and key unlock
  included (keys at the test work factor, 2^10; the unlock at the default one is a row of its
  own). The reference: `age -r KEY file | curl -T - URL` into nginx, then
  `curl URL | age -d -i KEY -o file`. `pli get` syncs the file it writes to disk; age does not.
- web app: the same file sent and got back by the web app in Debian's Chromium (headless, a
  fresh one launched by the benchmark), by an account sending to itself, against the same
  reference, in alternating rounds (`web_rounds` of them, after `web_warmup`). Send: from the
  click on "Encrypt and send" to the page's "Sent." (encrypted in a Web Worker, tus upload in
  8 MiB parts, manifest signed). Get: from the click on "Download" to the browser's download
  complete on disk (fetched, decrypted and checked in the worker, streamed through the app's
  service worker). Sign-in and key unlock are not timed. The heap is the page's
  `performance.memory`, sampled every 50 ms: its workers' are not counted.
- client encryption: the pipeline `pli send` runs (read, seal into parts, hash the parts),
  writing to a file instead of uploading, in a process of its own, interpreter start-up not
  included; the reference is `age -r KEY -o file file`, start-up included.
- server alone: curl is the client of both servers. Ingest: one tus `PATCH` of the whole file
  (after its `POST`, not timed) against a WebDAV PUT; pli hashes and syncs what it stores.
  Egress: a GET of a stored blob (bearer token) against a static GET; both to /dev/null.
- peak memory: the kernel's peak RSS of each process (`pli send` and `pli get` measured from a
  small launcher; the server's and nginx's reset before each size). "Flat": the largest size's
  peak within 10 MiB of the smallest's.
- concurrency: N `pli send` processes, each with its own copy of the sender's PLI_HOME, started
  together; aggregate throughput is N x size over the time from the first start to the last
  end, against one send of the same file alone (start-up included on both sides)."""


def run_all(
    plan: Plan,
    workdir: Path,
    *,
    keep_going: bool = True,
    log: Callable[[str], None] = print,
    parts: Collection[str] | None = None,
) -> Results:
    """Every part, or those named in `parts`, on one rig."""
    started, begin, load = datetime.now(UTC), time.monotonic(), os.getloadavg()
    rows: list[Row] = []
    failed: list[str] = []
    with running_rig(workdir) as rig:
        payload = make_payload(workdir / "payload.bin", plan.size_mib * MIB)
        for name, part in PARTS:
            if parts is not None and name not in parts:
                continue
            _settle()
            log(f"{name}…")
            part_start = time.monotonic()
            try:
                rows += part(rig, plan, payload)
            except Exception as exc:
                if not keep_going:
                    raise
                failed.append(name)
                rows.append(Row(name, "failed", f"{type(exc).__name__}: {exc}"[:300], ""))
            log(f"{name}: {time.monotonic() - part_start:.0f} s")
    minutes = (time.monotonic() - begin) / 60
    return Results(plan, this_machine(), rows, started, minutes, failed, load)


SETTLE_S = 2.0


def _settle() -> None:
    """Each part starts on a quiet machine: what the part before wrote (the browser's 1 GiB
    download, say) is on disk, not being written back under the next part's timings."""
    os.sync()
    time.sleep(SETTLE_S)


def log_to_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
