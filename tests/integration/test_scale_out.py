"""Two `pli serve` instances on one PostgreSQL database and one S3 bucket (a real radosgw):
they serve the same users, an upload begun on one goes on on the other, and what a revocation
deletes is gone from the bucket."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import (
    TUS,
    Server,
    bearer,
    make_user,
    new_upload,
    start_server,
    stop_server,
)
from tests.s3 import S3Server

MIB = 1 << 20


@pytest.fixture
def two_instances(
    tmp_path: Path, fresh_postgres: str, s3_server: S3Server
) -> Iterator[tuple[Server, Server, str]]:
    bucket = s3_server.new_bucket(s3_server.client())
    env = {
        **s3_server.env(),
        "PLI_BLOB_STORE": f"s3://{bucket}/pli",
        "PLI_TOKEN_KEY": secrets.token_hex(32),  # shared, as every instance must
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = start_server(tmp_path / "a", fresh_postgres, env)
    try:
        second = start_server(tmp_path / "b", fresh_postgres, env)
        try:
            yield first, second, bucket
        finally:
            stop_server(second)
    finally:
        stop_server(first)


def _objects(s3_server: S3Server, bucket: str) -> list[str]:
    listed = s3_server.client().list_objects_v2(Bucket=bucket)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_sent_through_one_received_through_the_other(
    two_instances: tuple[Server, Server, str], s3_server: S3Server, tmp_path: Path
) -> None:
    first, second, bucket = two_instances
    alice = make_user(first, tmp_path, "alice")
    bob = make_user(second, tmp_path, "bob")
    source = tmp_path / "results.csv"
    data = os.urandom(12 * MIB + 3)
    source.write_bytes(data)
    transfer = alice.send(source, to=bob.email)
    bob.ok("get", transfer, "-o", str(tmp_path / "got"))
    assert (tmp_path / "got" / "results.csv").read_bytes() == data
    [name] = _objects(s3_server, bucket)
    stored = s3_server.client().get_object(Bucket=bucket, Key=name)["Body"].read()
    assert data[:4096] not in stored  # ciphertext only

    alice.ok("revoke", transfer)
    assert _objects(s3_server, bucket) == []  # the bytes are gone from the store


def test_an_upload_begun_on_one_instance_ends_on_the_other(
    two_instances: tuple[Server, Server, str], s3_server: S3Server, tmp_path: Path
) -> None:
    first, second, bucket = two_instances
    alice = make_user(first, tmp_path, "alice")
    bob = make_user(first, tmp_path, "bob")
    data = os.urandom(11 * MIB)
    location = new_upload(first, alice, bob.email, len(data))
    octets = {**bearer(alice), **TUS, "content-type": "application/offset+octet-stream"}
    part = httpx.patch(
        f"{first.url}{location}",
        headers={**octets, "upload-offset": "0"},
        content=data[: 6 * MIB],
        timeout=60,
    )
    assert part.status_code == 204

    head = httpx.head(f"{second.url}{location}", headers={**bearer(alice), **TUS})
    assert head.headers["upload-offset"] == str(6 * MIB)
    rest = httpx.patch(
        f"{second.url}{location}",
        headers={**octets, "upload-offset": str(6 * MIB)},
        content=data[6 * MIB :],
        timeout=60,
    )
    assert rest.status_code == 204
    assert rest.headers["upload-offset"] == str(len(data))
    [name] = _objects(s3_server, bucket)
    assert s3_server.client().get_object(Bucket=bucket, Key=name)["Body"].read() == data
