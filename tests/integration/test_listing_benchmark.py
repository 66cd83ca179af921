"""The listing benchmark runs (small) in the test suite, so it cannot rot."""

from __future__ import annotations

from pathlib import Path

from benchmarks.listing import run, table


def test_listing_benchmark_runs(tmp_path: Path) -> None:
    figures = run([2000], tmp_path, requests=10, warmup=2)
    measured = figures[2000]
    assert measured["inbox_rows"] == 100  # one transfer in 20
    assert measured["outbox_rows"] == 80  # one in 25
    for label in ("inbox", "inbox_next", "outbox"):
        assert isinstance(measured[f"{label}_p50_ms"], float)
        assert isinstance(measured[f"{label}_p99_ms"], float)
    assert "ix_transfer_recipients_user_created" in str(measured["inbox_plan"])
    assert "ix_transfers_sender_created_id" in str(measured["outbox_plan"])
    assert "| 2,000 | 100 |" in table(figures)
