"""Fixtures shared by every test directory."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine

from pli.store.db import database_url, make_engine, migrate
from tests import s3
from tests.postgres import temporary_database
from tests.s3 import S3Server, empty_bucket

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[s3.S3Server]:
    """One radosgw per test session (per xdist worker: each on its own free ports), stopped at
    the end. Fails, rather than skips, where radosgw is not installed."""
    server = s3.start(tmp_path_factory.mktemp("s3-server"))
    try:
        yield server
    finally:
        s3.stop(server)


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated database on each backend, for tests that open several sessions at once."""
    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 'pli.db'}"
        if request.param == "postgres":
            url = stack.enter_context(temporary_database())
        made = make_engine(database_url(tmp_path, url))
        stack.callback(made.dispose)
        migrate(made)
        yield made


@pytest.fixture(scope="session")
def s3_client(s3_server: S3Server) -> S3Client:
    """One client for the session, as a server holds one: making a client takes ~0.4 s."""
    return s3_server.client()


@pytest.fixture
def s3_bucket(s3_server: S3Server, s3_client: S3Client) -> Iterator[str]:
    """A fresh bucket for each test, emptied and dropped afterwards."""
    bucket = s3_server.new_bucket(s3_client)
    yield bucket
    empty_bucket(s3_client, bucket)
