"""Fixtures shared by every test directory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import s3


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3.S3Server]:
    """One radosgw per test session (per xdist worker: each on its own free ports), stopped at
    the end. Fails, rather than skips, where radosgw is not installed."""
    server = s3.start(tmp_path_factory.mktemp("s3-server"))
    try:
        yield server
    finally:
        s3.stop(server)
