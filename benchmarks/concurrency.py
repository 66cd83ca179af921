"""Many clients at once: N `pli send` processes, each with its own PLI_HOME, send the same
file to bob at the same time; errors and aggregate throughput against one send alone."""

from __future__ import annotations

import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from tests.integration.conftest import User

from benchmarks.common import MIB, make_payload, median_of
from benchmarks.report import Row, ratio, seconds, throughput
from benchmarks.rig import Rig, send


@dataclass(frozen=True)
class Concurrency:
    clients: int
    size: int  # per client
    errors: int
    wall: float  # from the first start to the last end
    single: float  # one send of the same file alone (median)
    problems: list[str] = field(default_factory=list)

    @property
    def aggregate(self) -> float:
        return self.clients * self.size / self.wall

    @property
    def single_rate(self) -> float:
        return self.size / self.single

    def rows(self) -> list[Row]:
        label = f"{self.clients} clients x {self.size // MIB} MiB"
        errors = self.errors
        return [
            Row(
                "concurrency",
                f"{label}: failed sends",
                str(errors) + (f" ({self.problems[0]})" if self.problems else ""),
                "",
                "",
                "0",
                errors == 0,
            ),
            Row(
                "concurrency",
                f"{label}: aggregate / one send alone",
                f"{throughput(self.clients * self.size, self.wall)} ({seconds(self.wall)})",
                f"{throughput(self.size, self.single)} ({seconds(self.single)})",
                ratio(self.aggregate / self.single_rate),
                ">= 0.8x",
                errors == 0 and self.aggregate / self.single_rate >= 0.8,
            ),
        ]


def _clients(rig: Rig, count: int) -> list[User]:
    """`count` devices of alice: copies of her PLI_HOME (session, keys, pinned keys)."""
    warm = make_payload(rig.workdir / "pin.bin", 1024)
    rig.revoke(send(rig.alice, warm, rig.bob)[1])  # bob's keys are pinned before the copies
    homes = []
    for i in range(count):
        home = rig.workdir / "clients" / f"home-{i}"
        shutil.copytree(rig.alice.home, home)
        homes.append(User(rig.alice.email, home, rig.server))
    return homes


def concurrency(rig: Rig, *, clients: int, size_mib: int, rounds: int) -> Concurrency:
    payload = make_payload(rig.workdir / "concurrent.bin", size_mib * MIB)
    users = _clients(rig, clients)
    sent: list[str] = []

    def alone() -> float:
        elapsed, transfer_id = send(users[0], payload, rig.bob)
        sent.append(transfer_id)
        return elapsed

    alone()  # warm-up
    single = median_of(alone, rounds)
    problems: list[str] = []

    def one(user: User) -> None:
        try:
            sent.append(send(user, payload, rig.bob)[1])
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            problems.append(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(one, users))
    wall = time.perf_counter() - start
    for transfer_id in sent:
        rig.revoke(transfer_id)
    shutil.rmtree(rig.workdir / "clients")
    payload.unlink()
    return Concurrency(clients, size_mib * MIB, len(problems), wall, single, problems)
