"""Blobs as objects in an S3 bucket (AWS, Ceph radosgw, MinIO, ...), one multipart upload each.

Configured with `PLI_BLOB_STORE=s3://bucket/prefix` (the prefix is optional). The endpoint,
region and credentials come from the standard variables boto3 reads itself: AWS_ENDPOINT_URL,
AWS_REGION, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or any other source boto3 knows).

An object is named `prefix/` + the blob's random key and nothing else. An upload's token is the
key and the S3 UploadId, so any server instance can carry on with it. A part is spooled (in
memory up to SPOOL_MEMORY, then in a temporary file: it is ciphertext already) while its SHA-256
and MD5 are computed, and sent as one UploadPart with Content-MD5 on `commit`. `complete` checks
the parts against what the bucket holds, then completes with a conditional write (If-None-Match)
so that an existing blob is never replaced. Not every endpoint honours that header on a
multipart completion (Ceph radosgw 16.2 ignores it there), so the key does the rest: it is fresh
and random for each upload, and only a repeat of the same completion can reach its object;
that repeat is answered with the blob it made, and other parts for it are refused.

With AWS_ENDPOINT_URL set (radosgw, MinIO, ...), buckets are addressed in the URL path rather
than as a host name, which such endpoints need no DNS set-up for.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    SSLError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from pli.errors import ConfigError, ConflictError, NotFoundError, PliError, TransportError
from pli.store.blobs import READ_CHUNK, Listed, PartReceipt, check_parts

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

_Page = TypeVar("_Page")

MIN_PART: Final = 5 << 20  # S3's minimum for every part but the last
MAX_PART_NUMBER: Final = 10_000
SPOOL_MEMORY: Final = 8 << 20  # a part's bytes held in memory before it spills to disk
NO_SUCH_UPLOAD: Final = "no such upload"
NO_SUCH_BLOB: Final = "no such blob"

_KEY = re.compile(r"[0-9a-f]{32}")
# The token is `key:UploadId`. Upload ids are opaque, but every S3 implementation known to us
# uses URL-safe characters; anything else is refused rather than stored.
_TOKEN = re.compile(r"([0-9a-f]{32}):([A-Za-z0-9._~+/=:-]{1,990})")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_SEGMENT = re.compile(r"[A-Za-z0-9._-]{1,255}")
_REFUSED = {
    "403",
    "AccessDenied",
    "AccountProblem",
    "AllAccessDisabled",
    "ExpiredToken",
    "InvalidAccessKeyId",
    "InvalidToken",
    "SignatureDoesNotMatch",
    "TokenRefreshRequired",
}
_MISSING = {"404", "NoSuchKey", "NoSuchUpload"}


def client_config(*, path_style: bool) -> Config:
    """How pli talks to S3: bounded timeouts, standard retries, and only the checksums every
    S3 implementation understands (Content-MD5, which pli sends itself)."""
    return Config(
        retries={"mode": "standard", "max_attempts": 4},
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=32,
        tcp_keepalive=True,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path" if path_style else "auto"},
    )


def parse_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, prefix); the prefix has no leading or trailing slash."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ConfigError("PLI_BLOB_STORE must look like s3://bucket or s3://bucket/prefix")
    if parts.query or parts.fragment or "@" in parts.netloc or ":" in parts.netloc:
        raise ConfigError(
            "PLI_BLOB_STORE names a bucket and a prefix only: the endpoint and credentials "
            "come from AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    bucket, prefix = parts.netloc, parts.path.strip("/")
    check_location(bucket, prefix)
    return bucket, prefix


def check_location(bucket: str, prefix: str) -> None:
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ConfigError(
            f"{bucket!r} is not an S3 bucket name: 3 to 63 lower-case letters, digits, dots "
            "and hyphens"
        )
    segments = prefix.split("/") if prefix else []
    if len(prefix) > 512 or any(
        not _PREFIX_SEGMENT.fullmatch(s) or s in (".", "..") for s in segments
    ):
        raise ConfigError(
            f"{prefix!r} is not a usable prefix: folders of letters, digits, '.', '_' and '-' "
            "separated by '/'"
        )


class S3BlobStore:
    """Blobs as objects in one bucket, under one prefix. Keys are checked before use: no
    other object name can ever be formed."""

    min_part: int = MIN_PART  # S3's own minimum, for every part but the last

    def __init__(self, bucket: str, prefix: str = "", *, client: S3Client | None = None) -> None:
        prefix = prefix.strip("/")
        check_location(bucket, prefix)
        self.bucket, self.prefix = bucket, prefix
        if client is None:
            custom_endpoint = bool(
                os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            )
            try:
                client = boto3.session.Session().client(
                    "s3", config=client_config(path_style=custom_endpoint)
                )
            except BotoCoreError as exc:
                raise ConfigError(
                    "the S3 client cannot be set up: check AWS_REGION and AWS_ENDPOINT_URL"
                ) from exc
        self.client: S3Client = client
        endpoint = urlsplit(client.meta.endpoint_url)
        # Scheme, host and port only: an endpoint written with user:password@ keeps them.
        self.endpoint = f"{endpoint.scheme}://{endpoint.hostname}" + (
            f":{endpoint.port}" if endpoint.port else ""
        )

    @classmethod
    def from_url(cls, url: str, *, client: S3Client | None = None) -> S3BlobStore:
        bucket, prefix = parse_url(url)
        return cls(bucket, prefix, client=client)

    def name(self, key: str) -> str:
        """The object name of a blob: the prefix and the checked key, nothing else."""
        if not _KEY.fullmatch(key):
            raise NotFoundError(NO_SUCH_BLOB)
        return f"{self.prefix}/{key}" if self.prefix else key

    def check(self) -> None:
        """The bucket exists and the credentials open it: for start-up, to fail early."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise self._no_bucket() from exc
            self._fail(exc)
        except BotoCoreError as exc:
            self._fail(exc)

    # -- uploads ------------------------------------------------------------------------------

    def begin(self) -> str:
        key = secrets.token_hex(16)
        try:
            upload_id = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=self.name(key), ContentType="application/octet-stream"
            )["UploadId"]
        except (ClientError, BotoCoreError) as exc:
            self._fail(exc)
        token = f"{key}:{upload_id}"
        if not _TOKEN.fullmatch(token):
            self._abort(key, upload_id)
            raise ConfigError(
                f"the S3 endpoint {self.endpoint} names its uploads in a way pli cannot store"
            )
        return token

    def part(self, token: str, number: int, offset: int, *, checksum: bool = True) -> S3PartWriter:
        key, upload_id = _parse(token)
        if not 1 <= number <= MAX_PART_NUMBER:
            raise ConflictError(f"an upload has at most {MAX_PART_NUMBER} parts")
        return S3PartWriter(self, key, upload_id, number, checksum=checksum)

    def complete(self, token: str, parts: Sequence[PartReceipt]) -> str:
        key, upload_id = _parse(token)
        check_parts(parts)
        if any(p.size < MIN_PART for p in parts[:-1]):
            raise ConflictError(
                f"every part of an upload but the last must be at least {MIN_PART} bytes"
            )
        total = sum(p.size for p in parts)
        stored = self._stored_parts(key, upload_id)
        if stored is None:
            return self._completed_before(key, total)
        if not parts:
            return self._complete_empty(key, upload_id)
        for p in parts:
            if stored.get(p.number) != (p.size, _etag(p.tag)):
                raise ConflictError("the stored parts do not add up to the upload's size")
        done: list[CompletedPartTypeDef] = [{"PartNumber": p.number, "ETag": p.tag} for p in parts]
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.name(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": done},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", *_MISSING):
                # Another instance completed it first, or it was completed and then gone.
                return self._completed_before(key, total)
            self._fail(exc, NO_SUCH_UPLOAD)
        except BotoCoreError as exc:
            self._fail(exc)
        if self._head(key) != total:
            self.delete(key)
            raise ConflictError("the stored parts do not add up to the upload's size")
        return key

    def cancel(self, token: str) -> None:
        key, upload_id = _parse(token)
        self._abort(key, upload_id)

    # -- blobs --------------------------------------------------------------------------------

    def size(self, key: str) -> int:
        size = self._head(key)
        if size is None:
            raise NotFoundError(NO_SUCH_BLOB)
        return size

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        name = self.name(key)
        if start < 0 or (end is not None and end <= start):
            self.size(key)  # a missing blob is still reported as missing
            return iter(())
        wanted = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=name, Range=wanted)["Body"]
        except ClientError as exc:
            if _code(exc) == "InvalidRange":  # the blob exists but ends before `start`
                return iter(())
            self._fail(exc)
        except BotoCoreError as exc:
            self._fail(exc)
        return self._stream(body)

    def _stream(self, body: Any) -> Iterator[bytes]:
        try:
            while True:
                try:
                    chunk: bytes = body.read(READ_CHUNK)
                except BotoCoreError as exc:
                    self._fail(exc)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.name(key))
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                self._fail(exc)
        except BotoCoreError as exc:
            self._fail(exc)

    # -- listings, for the orphan sweep --------------------------------------------------------

    def stored(self, older_than: datetime) -> Iterator[Listed]:
        # Only the objects directly under the prefix are listed ("/" as delimiter): what other
        # programs keep in folders below it, or in other names, is never listed, so never deleted.
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._folder(), Delimiter="/"
        )
        for page in self._pages(pages):
            for item in page.get("Contents", []):
                key = item["Key"].removeprefix(self._folder())
                if _KEY.fullmatch(key) and item["LastModified"] < older_than:
                    yield Listed(key, item["Size"])

    def pending(self, older_than: datetime) -> Iterator[Listed]:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self._folder(), Delimiter="/"
        )
        for page in self._pages(pages):
            for upload in page.get("Uploads", []):
                token = f"{upload['Key'].removeprefix(self._folder())}:{upload['UploadId']}"
                if _TOKEN.fullmatch(token) and upload["Initiated"] < older_than:
                    yield Listed(token, 0)  # its size would take a request per upload

    def _folder(self) -> str:
        return f"{self.prefix}/" if self.prefix else ""

    def _pages(self, pages: Iterable[_Page]) -> Iterator[_Page]:
        """A listing's pages, its failures raised as pli errors."""
        iterator = iter(pages)
        while True:
            try:
                page = next(iterator)
            except StopIteration:
                return
            except (ClientError, BotoCoreError) as exc:
                self._fail(exc)
            yield page

    # -- helpers ------------------------------------------------------------------------------

    def _head(self, key: str) -> int | None:
        """The size of a blob, or None if there is none."""
        name = self.name(key)
        try:
            return self.client.head_object(Bucket=self.bucket, Key=name)["ContentLength"]
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                self._fail(exc)
        except BotoCoreError as exc:
            self._fail(exc)
        self.check()  # a HEAD says 404 for a missing bucket too: say which it is
        return None

    def _stored_parts(self, key: str, upload_id: str) -> dict[int, tuple[int, str]] | None:
        """Number -> (size, ETag) of every part the bucket holds, or None if the upload is
        gone (completed or cancelled)."""
        found: dict[int, tuple[int, str]] = {}
        marker = 0
        while True:
            try:
                page = self.client.list_parts(
                    Bucket=self.bucket,
                    Key=self.name(key),
                    UploadId=upload_id,
                    PartNumberMarker=marker,
                )
            except ClientError as exc:
                if _code(exc) in _MISSING:
                    return None
                self._fail(exc, NO_SUCH_UPLOAD)
            except BotoCoreError as exc:
                self._fail(exc)
            for p in page.get("Parts", []):
                found[p["PartNumber"]] = (p["Size"], _etag(p["ETag"]))
            if not page.get("IsTruncated"):
                return found
            marker = int(page["NextPartNumberMarker"])

    def _completed_before(self, key: str, total: int) -> str:
        """The upload is gone: harmless if it became this very blob (a repeated `complete`,
        or one that raced another instance), refused otherwise."""
        size = self._head(key)
        if size is None:
            raise NotFoundError(NO_SUCH_UPLOAD)
        if size != total:
            raise ConflictError("this upload was already completed with other parts")
        return key

    def _complete_empty(self, key: str, upload_id: str) -> str:
        # S3 refuses to complete an upload without parts: an empty blob is put instead.
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=self.name(key), Body=b"", IfNoneMatch="*"
            )
        except ClientError as exc:
            if _code(exc) != "PreconditionFailed":
                self._fail(exc)
            return self._completed_before(key, 0)
        except BotoCoreError as exc:
            self._fail(exc)
        self._abort(key, upload_id)
        return key

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.name(key), UploadId=upload_id
            )
        except ClientError as exc:
            if _code(exc) not in _MISSING:
                self._fail(exc)
        except BotoCoreError as exc:
            self._fail(exc)

    def _upload_part(self, key: str, upload_id: str, number: int, body: Any, md5: str) -> str:
        try:
            return self.client.upload_part(
                Bucket=self.bucket,
                Key=self.name(key),
                UploadId=upload_id,
                PartNumber=number,
                Body=body,
                ContentMD5=md5,
            )["ETag"]
        except ClientError as exc:
            if _code(exc) == "BadDigest":
                raise TransportError(
                    "the part was damaged on its way to the S3 endpoint: send it again"
                ) from exc
            self._fail(exc, NO_SUCH_UPLOAD)
        except BotoCoreError as exc:
            self._fail(exc)

    def _no_bucket(self) -> ConfigError:
        return ConfigError(
            f"the S3 bucket {self.bucket!r} does not exist at {self.endpoint}: create it, "
            "or correct PLI_BLOB_STORE"
        )

    def _fail(self, exc: ClientError | BotoCoreError, missing: str = NO_SUCH_BLOB) -> NoReturn:
        """Raise the pli error for a failed S3 request. Messages name the bucket and the
        endpoint, never a credential, and never repeat what the endpoint said."""
        raise self._error(exc, missing) from exc

    def _error(self, exc: ClientError | BotoCoreError, missing: str) -> PliError:
        if isinstance(exc, ClientError):
            return self._refusal(exc, missing)
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return ConfigError(
                "no S3 credentials were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if isinstance(exc, SSLError):
            return TransportError(
                f"the TLS connection to the S3 endpoint {self.endpoint} failed: check its "
                "certificate (AWS_CA_BUNDLE names extra certificate authorities)"
            )
        if isinstance(exc, BotoConnectionError | HTTPClientError):
            return TransportError(
                f"the S3 endpoint {self.endpoint} cannot be reached: check AWS_ENDPOINT_URL "
                "and that the endpoint is up"
            )
        return TransportError(
            f"a request to the S3 endpoint {self.endpoint} failed ({type(exc).__name__})"
        )

    def _refusal(self, exc: ClientError, missing: str) -> PliError:
        """The endpoint answered with an error."""
        code = _code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "NoSuchBucket":
            return self._no_bucket()
        if code in _REFUSED or status == 403:
            return ConfigError(
                f"the S3 endpoint {self.endpoint} refused pli's credentials for bucket "
                f"{self.bucket!r}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, and that "
                "they may use this bucket"
            )
        if code in _MISSING or status == 404:
            return NotFoundError(missing)
        return TransportError(
            f"the S3 endpoint {self.endpoint} failed a request ({exc.operation_name}: "
            f"{code or status}): try again later"
        )


class S3PartWriter:
    """One part: spooled and hashed as it arrives, uploaded whole on `commit`."""

    def __init__(
        self, store: S3BlobStore, key: str, upload_id: str, number: int, *, checksum: bool
    ) -> None:
        self._store, self._key, self._upload_id, self._number = store, key, upload_id, number
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY)  # noqa: SIM115
        self._sha256 = hashlib.sha256() if checksum else None
        self._md5 = hashlib.md5(usedforsecurity=False)  # Content-MD5: S3's transfer check
        self.size = 0

    def write(self, *pieces: bytes | bytearray | memoryview) -> None:
        for data in pieces:
            self._spool.write(data)
            if self._sha256 is not None:
                self._sha256.update(data)
            self._md5.update(data)
            self.size += len(data)

    def commit(self) -> PartReceipt:
        md5 = base64.b64encode(self._md5.digest()).decode("ascii")
        try:
            self._spool.seek(0)
            tag = self._store._upload_part(
                self._key, self._upload_id, self._number, self._spool, md5
            )
        finally:
            self._spool.close()
        digest = self._sha256.hexdigest() if self._sha256 is not None else ""
        return PartReceipt(self._number, self.size, digest, tag)

    def abort(self) -> None:
        # Nothing reached the bucket before `commit`; a part sent by a `commit` that then
        # failed is left out of `complete`, which names its parts, and goes with the upload.
        self._spool.close()


def _parse(token: str) -> tuple[str, str]:
    match = _TOKEN.fullmatch(token)
    if match is None:
        raise NotFoundError(NO_SUCH_UPLOAD)
    return match[1], match[2]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _etag(tag: str) -> str:
    return tag.strip('"')
