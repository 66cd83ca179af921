"""The blob store a server uses, from its configuration (PLI_BLOB_STORE)."""

from __future__ import annotations

from pathlib import Path

from pli.errors import ConfigError
from pli.store.blobs import BlobStore, LocalBlobStore


def open_blob_store(url: str | None, data_dir: Path) -> BlobStore:
    """None or "" -> files under `data_dir/blobs`; `s3://bucket/prefix` -> that bucket, checked
    now (it exists, the credentials open it) so that a wrong setting stops the server at start
    rather than at the first upload."""
    if not url:
        return LocalBlobStore(data_dir / "blobs")
    if url.startswith("s3://"):
        # boto3 weighs ~20 MB once imported: only servers that use S3 pay for it.
        from pli.store.s3 import S3BlobStore  # noqa: PLC0415

        store = S3BlobStore.from_url(url)
        store.check()
        return store
    raise ConfigError(
        "PLI_BLOB_STORE must be empty (files in the data directory) or s3://bucket/prefix"
    )
