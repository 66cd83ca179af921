"""The orphan sweep of the purge (pli.server.purge), on a real database and a real store: a
directory, and a bucket of a real radosgw (tests/s3.py). Orphans older than the grace go; recent
ones, referenced ones, a blob whose upload is being completed and names not in the store's own
format stay."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from pli.server import purge
from pli.server.config import Settings
from pli.store import models
from pli.store.blobs import BlobStore, LocalBlobStore
from pli.store.db import Database
from pli.store.s3 import S3BlobStore
from tests.unit.server.exchange import blob

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

PREFIX = "pli/blobs"
GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class Store:
    blobs: BlobStore
    tick: float  # seconds between two moments the store's clock tells apart
    has_blob: Callable[[str], bool]
    has_upload: Callable[[str], bool]
    add_foreign: Callable[[], Callable[[], bool]]  # adds foreign names; then: all still there?


def _hex() -> str:
    return secrets.token_hex(16)


def _local(root: Path) -> Store:
    blobs = LocalBlobStore(root)
    outside = root.parent / "outside"

    def add_foreign() -> Callable[[], bool]:
        outside.write_bytes(b"not the store's")
        key = "ab" + _hex()[2:]
        names = [
            root / "ab" / "not-a-key",
            root / "zz" / _hex(),  # not a shard's name
            root / "ab" / ("cd" + _hex()[2:]),  # a key in another key's shard
            root / "ab" / _hex().upper(),
            root / "notes.txt",
            root / "uploads" / "not-a-token",
        ]
        for path in names:
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(b"foreign")
        (root / "uploads" / _hex()).mkdir()  # a directory named like a token
        (root / "ab" / key).symlink_to(outside)  # a link named like a key, leading out
        kept = [*names, root / "ab" / key, outside]
        return lambda: all(p.exists() or p.is_symlink() for p in kept)

    return Store(
        blobs,
        0.05,
        lambda key: blobs.path(key).exists(),
        lambda token: (root / "uploads" / token).exists(),
        add_foreign,
    )


def _s3(client: S3Client, bucket: str) -> Store:
    blobs = S3BlobStore(bucket, PREFIX, client=client)

    def has_blob(key: str) -> bool:
        try:
            client.head_object(Bucket=bucket, Key=f"{PREFIX}/{key}")
        except ClientError as exc:
            if exc.response["ResponseMetadata"]["HTTPStatusCode"] == 404:
                return False
            raise
        return True

    def has_upload(token: str) -> bool:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return token.split(":", 1)[1] in [u["UploadId"] for u in uploads]

    def add_foreign() -> Callable[[], bool]:
        objects = [
            f"{PREFIX}/not-a-key",
            f"{PREFIX}/sub/{_hex()}",
            f"{PREFIX}x/{_hex()}",
            f"{PREFIX}/{_hex().upper()}",
            f"other/{_hex()}",
            _hex(),
        ]
        for name in objects:
            client.put_object(Bucket=bucket, Key=name, Body=b"foreign")
        uploads = [f"{PREFIX}/foreign-upload", f"{PREFIX}/sub/{_hex()}", f"other/{_hex()}"]
        for name in uploads:
            client.create_multipart_upload(Bucket=bucket, Key=name)

        def intact() -> bool:
            stored = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
            pending = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
            return set(objects) <= set(stored) and set(uploads) <= {u["Key"] for u in pending}

        return intact

    return Store(blobs, 1.1, has_blob, has_upload, add_foreign)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    if request.param == "local":
        return _local(tmp_path / "blobs")
    client: S3Client = request.getfixturevalue("s3_client")
    return _s3(client, request.getfixturevalue("s3_bucket"))


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, upload_grace=GRACE)


def _transfer(session: Session, files: int) -> list[models.TransferFile]:
    """A sealed transfer, live for a week, with `files` files not uploaded yet."""
    now = datetime.now(UTC)
    sender = models.User(email=f"{_hex()}@example.org", password_hash="x", created_at=now)
    session.add(sender)
    session.flush()
    transfer = models.Transfer(
        id=_hex(), sender_id=sender.id, state="sealed", created_at=now, expires_at=now + 7 * GRACE
    )
    session.add(transfer)
    session.flush()
    rows = [
        models.TransferFile(id=_hex(), transfer_id=transfer.id, position=i) for i in range(files)
    ]
    session.add_all(rows)
    session.commit()
    return rows


def _upload_row(session: Session, row: models.TransferFile, token: str) -> None:
    """The row of an upload under way: what references its token."""
    now = datetime.now(UTC)
    session.add(
        models.Upload(
            id=_hex(),
            transfer_id=row.transfer_id,
            file_id=row.id,
            length=10,
            token=token,
            created_at=now,
            expires_at=now + 7 * GRACE,
        )
    )
    session.commit()


def _pending(blobs: BlobStore) -> str:
    """An unfinished upload with a part written: its token."""
    token = blobs.begin()
    writer = blobs.part(token, 1, 0)
    writer.write(b"half a file")
    writer.commit()
    return token


@dataclass(frozen=True)
class Scene:
    cut: datetime  # older than this is older than the grace
    orphan_blob: str
    orphan_upload: str
    kept_blobs: list[str]
    kept_uploads: list[str]
    foreign_intact: Callable[[], bool]


def _scene(session: Session, store: Store) -> Scene:
    blobs = store.blobs
    referenced, uploading, completing = _transfer(session, 3)
    old_blob = blob(blobs, b"orphan ciphertext")
    old_upload = _pending(blobs)
    kept_blob = blob(blobs, b"referenced")
    referenced.blob_key, referenced.size = kept_blob, 10
    session.commit()
    kept_upload = _pending(blobs)
    _upload_row(session, uploading, kept_upload)
    # Completed in the store, its file's row not updated yet: the upload's row still holds it.
    token = _pending(blobs)
    _upload_row(session, completing, token)
    being_completed = _complete(blobs, token)
    foreign_intact = store.add_foreign()
    time.sleep(store.tick)
    cut = datetime.now(UTC)
    time.sleep(store.tick)
    recent_blob, recent_upload = blob(blobs, b"recent"), _pending(blobs)
    return Scene(
        cut,
        old_blob,
        old_upload,
        [kept_blob, being_completed, recent_blob],
        [kept_upload, recent_upload],
        foreign_intact,
    )


def _complete(blobs: BlobStore, token: str) -> str:
    writer = blobs.part(token, 1, 0)
    writer.write(b"a whole file")
    return blobs.complete(token, [writer.commit()])


def _orphans(report: purge.Report) -> dict[str, str]:
    return {i.id: i.reason for i in report.items if i.reason.startswith("orphan")}


def test_orphans_older_than_the_grace_go_and_nothing_else(
    database: Session, store: Store, tmp_path: Path
) -> None:
    scene = _scene(database, store)
    settings, now = _settings(tmp_path), scene.cut + GRACE
    expected = {scene.orphan_blob: "orphan-blob", scene.orphan_upload: "orphan-upload"}

    planned = purge.plan(database, store.blobs, settings, now=now)
    assert _orphans(planned) == expected
    blob_item = next(i for i in planned.items if i.id == scene.orphan_blob)
    assert blob_item.bytes == store.blobs.size(scene.orphan_blob)
    assert store.has_blob(scene.orphan_blob)  # a plan deletes nothing
    assert store.has_upload(scene.orphan_upload)

    done = purge.run_in(database, store.blobs, settings, now=now, sweep=True)
    assert _orphans(done) == expected
    assert not store.has_blob(scene.orphan_blob)
    assert not store.has_upload(scene.orphan_upload)
    assert all(store.has_blob(key) for key in scene.kept_blobs)
    assert all(store.has_upload(token) for token in scene.kept_uploads)
    assert scene.foreign_intact()
    again = purge.run_in(database, store.blobs, settings, now=now, sweep=True)
    assert _orphans(again) == {}


def test_a_database_without_transfers_judges_no_store(session: Session, tmp_path: Path) -> None:
    # Another server's store (a shared prefix, a forgotten PLI_DATABASE_URL): nothing of it goes.
    blobs = LocalBlobStore(tmp_path / "blobs")
    key, token = blob(blobs, b"someone else's"), _pending(blobs)
    later = datetime.now(UTC) + 2 * GRACE
    settings = _settings(tmp_path)

    assert purge.plan(session, blobs, settings, now=later).items == []
    assert purge.run_in(session, blobs, settings, now=later, sweep=True).items == []
    assert blobs.path(key).exists()
    assert (tmp_path / "blobs" / "uploads" / token).exists()


def test_orphans_are_swept_hourly_not_at_every_round(engine: Engine, tmp_path: Path) -> None:
    database = Database(engine)
    blobs = LocalBlobStore(tmp_path / "blobs")
    with database.session() as session:
        _transfer(session, 1)
    settings, start = _settings(tmp_path), datetime.now(UTC) + 2 * GRACE

    def orphan_swept(now: datetime) -> bool:
        key = blob(blobs, b"orphan")
        os.utime(blobs.path(key), (0, 0))  # written long ago
        purge.run(database, blobs, settings, now=now)
        return not blobs.path(key).exists()

    assert orphan_swept(start)  # the first round of a process sweeps
    assert not orphan_swept(start + purge.SWEEP_EVERY / 2)
    assert orphan_swept(start + purge.SWEEP_EVERY)
