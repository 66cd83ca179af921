"""The benchmarks run (small) in the test suite, so `make bench` cannot rot."""

from __future__ import annotations

from pathlib import Path

from benchmarks.transfer import run


def test_transfer_benchmark_runs(tmp_path: Path) -> None:
    figures = run(4, tmp_path)
    assert figures.send_s > 0
    assert figures.get_s > 0
    assert "round trip" in figures.table()
    assert (tmp_path / "out" / "payload.bin").stat().st_size == 4 << 20
