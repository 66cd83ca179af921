"""The S3 blob store's throughput against a local radosgw (scripts/s3-server.sh, in memory): a
blob written the way the server writes one (64 MiB parts fed in 1 MiB batches, each spooled,
hashed and sent with Content-MD5) and read back in READ_CHUNKs; beside it, boto3 alone
(upload_part of bytes already in memory, get_object read in the same chunks), the ceiling.
Rounds alternate the two and the medians are printed.

    python -m benchmarks.s3_store [--size-mib 256] [--rounds 5]
"""

from __future__ import annotations

import argparse
import functools
import os
import secrets
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import boto3

from benchmarks.common import MIB, mb_per_s
from pli.server.uploads.service import PART_TARGET
from pli.store.blobs import READ_CHUNK
from pli.store.s3 import S3BlobStore, client_config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "s3-server.sh"
BATCH = MIB  # what the upload route hands a part writer at a time
T = TypeVar("T")


def store_upload(store: S3BlobStore, payload: memoryview) -> str:
    token = store.begin()
    receipts = []
    for number, start in enumerate(range(0, len(payload), PART_TARGET), start=1):
        writer = store.part(token, number, start)
        part = payload[start : start + PART_TARGET]
        for offset in range(0, len(part), BATCH):
            writer.write(part[offset : offset + BATCH])
        receipts.append(writer.commit())
    return store.complete(token, receipts)


def store_download(store: S3BlobStore, key: str) -> int:
    return sum(len(chunk) for chunk in store.read(key))


def boto_upload(client: S3Client, bucket: str, payload: memoryview) -> str:
    name = f"raw/{secrets.token_hex(16)}"
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=name)["UploadId"]
    parts: list[CompletedPartTypeDef] = []
    for number, start in enumerate(range(0, len(payload), PART_TARGET), start=1):
        body = payload[start : start + PART_TARGET].tobytes()
        etag = client.upload_part(
            Bucket=bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=body
        )["ETag"]
        parts.append({"PartNumber": number, "ETag": etag})
    client.complete_multipart_upload(
        Bucket=bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
    )
    return name


def boto_download(client: S3Client, bucket: str, name: str) -> int:
    body = client.get_object(Bucket=bucket, Key=name)["Body"]
    total = 0
    while chunk := body.read(READ_CHUNK):
        total += len(chunk)
    return total


def timed(action: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def measure(client: S3Client, bucket: str, size: int, rounds: int) -> dict[str, list[float]]:
    store = S3BlobStore(bucket, "bench", client=client)
    payload = memoryview(os.urandom(size))
    seconds: dict[str, list[float]] = {
        k: [] for k in ("store up", "store down", "boto up", "boto down")
    }
    for _ in range(rounds + 1):  # the first round warms memory on both sides and is dropped
        spent, key = timed(lambda: store_upload(store, payload))
        seconds["store up"].append(spent)
        spent, got = timed(functools.partial(store_download, store, key))
        assert got == size
        seconds["store down"].append(spent)
        store.delete(key)
        spent, name = timed(lambda: boto_upload(client, bucket, payload))
        seconds["boto up"].append(spent)
        spent, got = timed(functools.partial(boto_download, client, bucket, name))
        assert got == size
        seconds["boto down"].append(spent)
        client.delete_object(Bucket=bucket, Key=name)
    return {k: v[1:] for k, v in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.s3_store", description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    size = args.size_mib * MIB
    access, secret = secrets.token_hex(10), secrets.token_hex(20)
    with tempfile.TemporaryDirectory(prefix="pli-s3-bench-") as tmp:
        directory = Path(tmp) / "s3"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret,
            # every round writes the blob twice; deleted objects are freed a few seconds later
            "PLI_S3_MEMORY": str(2 * size * (args.rounds + 1) + (512 << 20)),
        }
        started = subprocess.run(
            [str(SCRIPT), "start", str(directory)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=180,
        )
        endpoint = next(
            line.split("=", 1)[1]
            for line in started.stdout.splitlines()
            if line.startswith("export AWS_ENDPOINT_URL=")
        )
        try:
            client = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint,
                region_name="us-east-1",
                aws_access_key_id=access,
                aws_secret_access_key=secret,
                config=client_config(path_style=True),
            )
            client.create_bucket(Bucket="bench")
            results = measure(client, "bench", size, args.rounds)
        finally:
            subprocess.run([str(SCRIPT), "stop", str(directory)], check=True, timeout=60)
    print(f"{args.size_mib} MiB, median of {args.rounds} rounds, radosgw on memstore, loopback")
    for name, values in results.items():
        median = statistics.median(values)
        print(f"{name:>10}: {mb_per_s(size, median):7.0f} MB/s  ({median:.2f} s)")


if __name__ == "__main__":
    main()
