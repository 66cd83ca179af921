"""What only the S3 store does, against a real radosgw (tests/s3.py): object names, upload
tokens any instance can carry on with, repeated completions, the S3 part-size rule, and clean
errors for a missing bucket, refused credentials or an endpoint that does not answer."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import socket
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pli.errors import ConfigError, ConflictError, NotFoundError, PliError, TransportError
from pli.server.config import Settings
from pli.store.blobs import READ_CHUNK, LocalBlobStore, put
from pli.store.factory import open_blob_store
from pli.store.s3 import MIN_PART, SPOOL_MEMORY, S3BlobStore, parse_url
from tests.s3 import S3Server
from tests.unit.store.conftest import PREFIX, bucket_contents
from tests.unit.store.test_blobs import content, upload, write_part

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

OBJECT_NAME = re.compile(re.escape(PREFIX) + r"/[0-9a-f]{32}")


def test_three_parts_of_at_least_5_mib_round_trip(s3_store: S3BlobStore) -> None:
    # The middle part is larger than what a writer keeps in memory: it spills to disk.
    pieces = [os.urandom(MIN_PART), os.urandom(SPOOL_MEMORY + 12345), os.urandom(MIN_PART)]
    key, receipts = upload(s3_store, pieces)
    assert [r.sha256 for r in receipts] == [hashlib.sha256(p).hexdigest() for p in pieces]
    assert all(re.fullmatch(r'"[0-9a-f]{32}"', r.tag) for r in receipts)  # S3 ETags
    digest = hashlib.sha256()
    for chunk in s3_store.read(key):
        assert len(chunk) <= READ_CHUNK
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert s3_store.size(key) == sum(map(len, pieces))


def test_object_names_are_the_prefix_and_the_key_only(
    s3_store: S3BlobStore, s3_client: S3Client
) -> None:
    finished, _ = put(s3_store, [b"done"])
    token = s3_store.begin()
    write_part(s3_store, token, 1, 0, b"under way")
    names = bucket_contents(s3_client, s3_store.bucket)
    assert sorted(names) == sorted([f"{PREFIX}/{finished}", f"upload of {PREFIX}/{token[:32]}"])
    objects = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_store.bucket)["Contents"]]
    uploads = s3_client.list_multipart_uploads(Bucket=s3_store.bucket)["Uploads"]
    assert all(OBJECT_NAME.fullmatch(n) for n in [*objects, *(u["Key"] for u in uploads)])

    bare = S3BlobStore(s3_store.bucket, "", client=s3_client)
    key, _ = put(bare, [b"no prefix"])
    assert bare.name(key) == key
    assert key in [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_store.bucket)["Contents"]]


def test_a_token_fits_its_column_and_any_instance_carries_on_with_it(
    s3_server: S3Server, s3_store: S3BlobStore
) -> None:
    token = s3_store.begin()
    assert len(token) <= 1024
    assert re.fullmatch(r"[0-9a-f]{32}:\S+", token)
    first = os.urandom(MIN_PART)
    r1 = write_part(s3_store, token, 1, 0, first)

    other = S3BlobStore(s3_store.bucket, PREFIX, client=s3_server.client())  # another instance
    r2 = write_part(other, token, 2, MIN_PART, b"the end")
    key = other.complete(token, [r1, r2])
    assert key == token[:32]
    assert content(s3_store, key) == first + b"the end"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t.upper(),
        lambda t: t[1:],
        lambda t: t.replace(":", "/", 1),
        lambda t: t + "\n",
        lambda t: t + " x",
        lambda t: t[:33],
        lambda t: "../" + t[3:],
        lambda t: t[:33] + "x" * 1000,
    ],
)
def test_a_tampered_token_is_refused(s3_store: S3BlobStore, tamper: Callable[[str], str]) -> None:
    bad = tamper(s3_store.begin())
    with pytest.raises(NotFoundError, match="no such upload"):
        s3_store.part(bad, 1, 0)
    with pytest.raises(NotFoundError, match="no such upload"):
        s3_store.complete(bad, [])
    with pytest.raises(NotFoundError, match="no such upload"):
        s3_store.cancel(bad)


def test_a_second_complete_is_harmless_and_other_parts_are_refused(
    s3_store: S3BlobStore,
) -> None:
    pieces = [os.urandom(MIN_PART), os.urandom(1000)]
    token = s3_store.begin()
    r1 = write_part(s3_store, token, 1, 0, pieces[0])
    r2 = write_part(s3_store, token, 2, MIN_PART, pieces[1])
    key = s3_store.complete(token, [r1, r2])

    # An interrupted finish is retried: the same parts give the same blob, untouched.
    assert s3_store.complete(token, [r1, r2]) == key
    # Different parts never replace it.
    with pytest.raises(ConflictError, match="already completed"):
        s3_store.complete(token, [r1])
    with pytest.raises(ConflictError):
        s3_store.complete(token, [r1, r2._replace(size=5)])
    assert content(s3_store, key) == b"".join(pieces)

    # Once the blob is deleted, the upload is gone for good.
    s3_store.delete(key)
    with pytest.raises(NotFoundError, match="no such upload"):
        s3_store.complete(token, [r1, r2])


def test_an_empty_blob_is_written_once(s3_store: S3BlobStore) -> None:
    token = s3_store.begin()
    key = s3_store.complete(token, [])
    assert s3_store.complete(token, []) == key  # If-None-Match: the second put is refused
    assert s3_store.size(key) == 0


def test_parts_but_the_last_must_be_5_mib(s3_store: S3BlobStore) -> None:
    assert s3_store.min_part == MIN_PART
    token = s3_store.begin()
    r1 = write_part(s3_store, token, 1, 0, os.urandom(MIN_PART - 1))
    r2 = write_part(s3_store, token, 2, MIN_PART - 1, b"tail")
    with pytest.raises(ConflictError, match="at least"):
        s3_store.complete(token, [r1, r2])
    s3_store.cancel(token)


def test_a_part_number_is_between_1_and_10000(s3_store: S3BlobStore) -> None:
    token = s3_store.begin()
    for number in (0, 10_001):
        with pytest.raises(ConflictError):
            s3_store.part(token, number, 0)


def _secret_free(error: PliError, *secrets_: str) -> None:
    """Neither the message nor anything chained to it repeats a secret."""
    text = "".join(traceback.format_exception(error)) + repr(error.hint)
    for secret in secrets_:
        assert secret not in text


def test_refused_credentials_are_a_clean_config_error(s3_server: S3Server, s3_bucket: str) -> None:
    wrong = "wrong-" + secrets.token_hex(16)
    for client in (
        s3_server.client(secret_key=wrong),
        s3_server.client(access_key="nobody" + secrets.token_hex(4), secret_key=wrong),
    ):
        store = S3BlobStore(s3_bucket, PREFIX, client=client)
        for attempt in (store.begin, store.check, lambda s=store: s.size("0" * 32)):
            with pytest.raises(ConfigError, match="refused pli's credentials") as caught:
                attempt()
            assert s3_bucket in str(caught.value)
            _secret_free(caught.value, wrong, s3_server.secret_key)


def test_a_missing_bucket_is_a_config_error_naming_it(s3_client: S3Client) -> None:
    store = S3BlobStore("no-such-bucket-here", client=s3_client)
    for attempt in (store.check, store.begin, lambda: store.size("0" * 32)):
        with pytest.raises(ConfigError, match="'no-such-bucket-here' does not exist"):
            attempt()


def test_an_endpoint_that_does_not_answer_is_a_transport_error(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _use_aws_env(monkeypatch, tmp_path, {**s3_server.env(), "AWS_ENDPOINT_URL": _closed_port()})
    store = S3BlobStore.from_url("s3://any-bucket/x")
    with pytest.raises(TransportError, match="cannot be reached") as caught:
        store.begin()
    _secret_free(caught.value, s3_server.secret_key)


def test_the_store_reads_the_standard_aws_variables(
    s3_server: S3Server, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _use_aws_env(monkeypatch, tmp_path, s3_server.env())
    store = open_blob_store(f"s3://{s3_bucket}/from/env/", tmp_path)
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == (s3_bucket, "from/env")
    key, _ = put(store, [b"configured by the environment"])
    assert content(store, key) == b"configured by the environment"


def test_no_credentials_at_all_is_a_config_error(
    s3_bucket: str, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = s3_server.env()
    del env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    _use_aws_env(monkeypatch, tmp_path, env)
    with pytest.raises(ConfigError, match="no S3 credentials"):
        open_blob_store(f"s3://{s3_bucket}", tmp_path)


def test_the_server_reads_pli_blob_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("PLI_BLOB_STORE", raising=False)
    assert Settings.from_env(tmp_path).blob_store is None
    monkeypatch.setenv("PLI_BLOB_STORE", "")
    assert Settings.from_env(tmp_path).blob_store is None
    monkeypatch.setenv("PLI_BLOB_STORE", "s3://pli-blobs/prod")
    assert Settings.from_env(tmp_path).blob_store == "s3://pli-blobs/prod"


def test_open_blob_store_defaults_to_the_data_directory(tmp_path: Path) -> None:
    for setting in (None, ""):
        store = open_blob_store(setting, tmp_path)
        assert isinstance(store, LocalBlobStore)
        assert store.root == tmp_path / "blobs"


@pytest.mark.parametrize(
    "url",
    [
        "http://bucket/prefix",
        "file:///srv/blobs",
        "/srv/blobs",
        "s3://",
        "s3://Upper_Case",
        "s3://ab",
        "s3://bucket/../escape",
        "s3://bucket/a//b",
        "s3://bucket/with space",
        "s3://bucket?region=x",
        "s3://user:pass-word@bucket/prefix",
    ],
)
def test_unusable_settings_are_config_errors(url: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        open_blob_store(url, tmp_path)
    assert "pass-word" not in str(caught.value)


def test_a_url_names_a_bucket_and_a_prefix() -> None:
    assert parse_url("s3://pli-blobs") == ("pli-blobs", "")
    assert parse_url("s3://pli-blobs/") == ("pli-blobs", "")
    assert parse_url("s3://pli-blobs/prod/eu-1/") == ("pli-blobs", "prod/eu-1")


def _use_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str]) -> None:
    """Exactly these AWS settings: nothing from the caller's environment or ~/.aws."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"
