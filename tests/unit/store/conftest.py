"""Blob stores to test: a local directory, and a bucket of a real radosgw (tests/s3.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pli.store.blobs import BlobStore, LocalBlobStore
from pli.store.s3 import S3BlobStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "pli/blobs"


@dataclass(frozen=True)
class Subject:
    store: BlobStore
    leftovers: Callable[[], list[str]]  # everything the store holds: files, objects, uploads


@pytest.fixture
def s3_store(s3_client: S3Client, s3_bucket: str) -> S3BlobStore:
    return S3BlobStore(s3_bucket, PREFIX, client=s3_client)


def bucket_contents(client: S3Client, bucket: str) -> list[str]:
    """The names of every object and every unfinished upload in the bucket."""
    names = [o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    return names + [f"upload of {u['Key']}" for u in uploads]


@pytest.fixture(params=["local", "s3"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    """Each shared behaviour, once on each store."""
    if request.param == "local":
        root = tmp_path / "blobs"
        local = LocalBlobStore(root)
        return Subject(local, lambda: sorted(str(p) for p in root.rglob("*") if p.is_file()))
    store: S3BlobStore = request.getfixturevalue("s3_store")
    client: S3Client = request.getfixturevalue("s3_client")
    return Subject(store, lambda: bucket_contents(client, store.bucket))
