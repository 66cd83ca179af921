"""A real S3 endpoint for the tests: Ceph's radosgw on an in-memory OSD, started and stopped by
scripts/s3-server.sh on free loopback ports, with keys made up for the run."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.exceptions import ClientError

from pli.store.s3 import client_config

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "s3-server.sh"
REGION = "us-east-1"
DAEMONS = ("radosgw", "radosgw-admin", "ceph-mon", "ceph-osd", "ceph", "monmaptool")


@dataclass(frozen=True)
class S3Server:
    directory: Path
    endpoint: str
    access_key: str
    secret_key: str

    def env(self) -> dict[str, str]:
        """The standard variables that point boto3 at this endpoint."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
        }

    def client(self, *, access_key: str | None = None, secret_key: str | None = None) -> S3Client:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=client_config(path_style=True),
        )

    def new_bucket(self, client: S3Client) -> str:
        bucket = f"pli-test-{secrets.token_hex(6)}"
        client.create_bucket(Bucket=bucket)
        return bucket


def empty_bucket(client: S3Client, bucket: str) -> None:
    """Drop every object and unfinished upload, then the bucket: memstore holds them in RAM."""
    try:
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                client.abort_multipart_upload(
                    Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                )
        for listing in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in listing.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "NoSuchBucket":
            raise


def start(directory: Path) -> S3Server:
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        pytest.fail(
            f"the S3 tests need Ceph's radosgw, and these are not installed: "
            f"{', '.join(missing)}. Run scripts/system-deps.sh as root",
            pytrace=False,
        )
    access_key, secret_key = secrets.token_hex(10), secrets.token_hex(20)
    # Nothing of the caller's environment but PATH: no CEPH_* or AWS_* setting leaks in.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    env.update(AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key)
    failures = []
    for attempt in (1, 2):  # a free port picked by the script may be taken meanwhile: once more
        where = directory / f"attempt-{attempt}"
        started = subprocess.run(
            [str(SCRIPT), "start", str(where)],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if started.returncode == 0:
            exports = dict(
                line.removeprefix("export ").split("=", 1)
                for line in started.stdout.splitlines()
                if line.startswith("export ")
            )
            return S3Server(where, exports["AWS_ENDPOINT_URL"], access_key, secret_key)
        failures.append(f"{started.stderr.strip()}\n{_log_tail(where)}")
    pytest.fail(
        "scripts/s3-server.sh could not start radosgw:\n" + "\n".join(failures), pytrace=False
    )


def stop(server: S3Server) -> None:
    subprocess.run(
        [str(SCRIPT), "stop", str(server.directory)],
        capture_output=True,
        timeout=60,
        check=True,
    )


def _log_tail(directory: Path) -> str:
    lines = []
    for log in sorted((directory / "log").glob("*.log")):
        tail = log.read_text(errors="replace").splitlines()[-10:]
        lines += [f"--- {log.name}", *tail]
    return "\n".join(lines)
