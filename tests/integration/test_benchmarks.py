"""Every part of the benchmarks runs (small, no timing asserted) in the test suite, so
`make bench` cannot rot."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.commands import fixed_costs, round_trips
from benchmarks.common import MIB, make_payload
from benchmarks.concurrency import concurrency
from benchmarks.report import Row, table
from benchmarks.rig import Rig, running_rig
from benchmarks.run import SMALL, listing_rows
from benchmarks.transfer import client_encryption, memory, send_get, server_io
from benchmarks.web_app import web_app

from tests.browser.conftest import CHROMIUM


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    with running_rig(tmp_path_factory.mktemp("bench")) as stage:
        yield stage


@pytest.fixture(scope="module")
def payload(rig: Rig) -> Path:
    return make_payload(rig.workdir / "payload.bin", SMALL.size_mib * MIB)


def _complete(rows: list[Row]) -> None:
    assert rows
    for row in rows:
        assert row.pli
        assert "pending" not in row.pli


def test_send_get(rig: Rig, payload: Path) -> None:
    figures = send_get(rig, payload, rounds=1, warmup=0)
    assert figures.send > 0
    assert figures.download > 0
    _complete(figures.rows())


def test_web_app(rig: Rig, payload: Path) -> None:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is not installed (scripts/system-deps.sh installs chromium)")
    figures = web_app(rig, payload, rounds=1, warmup=0)
    assert not figures.problem, figures.problem
    assert figures.send > 0
    assert figures.get > 0
    _complete(figures.rows())


def test_client_encryption(rig: Rig, payload: Path) -> None:
    # It also checks that the age CLI decrypts what pli's pipeline wrote.
    figures = client_encryption(rig, payload, rounds=1, warmup=0)
    assert figures.times.pli > 0
    _complete(figures.rows())


def test_server_ingest_and_egress(rig: Rig, payload: Path) -> None:
    figures = server_io(rig, payload, rounds=1, warmup=0)
    assert figures.ingest is not None, figures.ingest_problem
    _complete(figures.rows())


def test_peak_memory(rig: Rig) -> None:
    figures = memory(rig, [MIB, 4 * MIB])
    assert [f.size for f in figures.at] == [MIB, 4 * MIB]
    assert all(f.send > 0 and f.get > 0 and f.server > 0 and f.nginx > 0 for f in figures.at)
    _complete(figures.rows())


def test_small_files_and_fixed_costs(rig: Rig) -> None:
    trips = round_trips(rig, count=2, warmup=0)
    costs = fixed_costs(rig, times=1)
    assert trips.round_trip > 0
    assert costs.unlock > 0
    _complete(trips.rows() + costs.rows())


def test_concurrent_clients(rig: Rig) -> None:
    figures = concurrency(rig, clients=3, size_mib=4, rounds=1)
    assert figures.errors == 0, figures.problems
    _complete(figures.rows())


def test_listing_hook(rig: Rig, payload: Path) -> None:
    rows = listing_rows(rig, SMALL, payload)
    assert rows


def test_table_escapes_cells() -> None:
    text = table([Row("part", "a | b", "1 s", "2 s", "2.00x", ">= 1.2x", True)])
    assert "a \\| b" in text
    assert text.count("\n") == 2
