"""Retention through a real `pli serve` and the real CLI: a transfer that expires is purged
within seconds (its blob gone from the directory or the S3 bucket, the purge in the audit log,
`pli get` told it has expired), and `pli admin purge` shows, then deletes, what is due."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pli.durations import parse_duration
from tests.integration.conftest import Server, User, bearer, make_user, running_server
from tests.s3 import S3Server, empty_bucket

# Short, yet long enough for `pli send` to seal the transfer on a busy machine first.
EXPIRES = "5s"


def _blob_files(server: Server) -> list[Path]:
    """The completed blobs of a server storing them in its data directory."""
    root = server.data / "blobs"
    return [p for p in root.rglob("*") if p.is_file() and p.parent.name != "uploads"]


def _audit(server: Server) -> list[dict[str, Any]]:
    exported = server.admin(
        "audit", "export", "--since", "2000-01-01T00:00:00Z", "--until", "2999-01-01T00:00:00Z"
    )
    assert exported.returncode == 0, exported.stderr
    return [json.loads(line) for line in exported.stdout.splitlines()]


def _events_of(server: Server, subject: str) -> list[str]:
    return [r["event"] for r in _audit(server) if r["subject"] == subject]


def _eventually(condition: Callable[[], bool], seconds: float = 20) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


def _send_expiring(server: Server, tmp_path: Path) -> tuple[str, User]:
    """alice sends bob a file that expires in EXPIRES: its id, and bob."""
    alice, bob = (make_user(server, tmp_path, name) for name in ("alice", "bob"))
    source = tmp_path / "bilan.csv"
    source.write_bytes(b"nom;nir\nDupont;185057800608436\n" * 100)
    return alice.send(source, to=bob.email, extra=("--expires", EXPIRES)), bob


Counter = Callable[[Server], int]  # how many blobs a server's store holds


@pytest.fixture(params=["local", "s3"])
def store_env(request: pytest.FixtureRequest) -> Iterator[tuple[dict[str, str], Counter]]:
    """A server's blob store settings (its data directory, or a fresh bucket), and a count."""
    if request.param == "local":
        yield {}, lambda server: len(_blob_files(server))
        return
    s3: S3Server = request.getfixturevalue("s3_server")
    client = s3.client()
    bucket = s3.new_bucket(client)
    env = {**s3.env(), "PLI_BLOB_STORE": f"s3://{bucket}/pli"}
    yield env, lambda _server: len(client.list_objects_v2(Bucket=bucket).get("Contents", []))
    empty_bucket(client, bucket)


def test_an_expired_transfer_is_purged_within_seconds(
    tmp_path: Path, store_env: tuple[dict[str, str], Counter]
) -> None:
    env, stored = store_env
    with running_server(tmp_path, {**env, "PLI_PURGE_INTERVAL": "1s"}) as server:
        transfer, bob = _send_expiring(server, tmp_path)

        assert _eventually(lambda: stored(server) == 0)
        # A purge is recorded (and committed) before the blobs go: it is in the log already.
        records = [r for r in _audit(server) if r["subject"] == transfer]
        events = [r["event"] for r in records]
        assert events.index("transfer.expired") < events.index("transfer.purged")
        [purged] = [r["details"] for r in records if r["event"] == "transfer.purged"]
        # Its one blob was there, and is what went.
        assert (purged["reason"], purged["files"]) == ("expired", 1)
        assert purged["bytes"] > 3000
        answer = httpx.get(f"{server.url}/api/v1/transfers/{transfer}", headers=bearer(bob))
        assert answer.status_code == 410
        refused = bob.run("get", transfer, "-o", str(tmp_path / "got"))
        assert refused.returncode != 0
        assert refused.stderr.splitlines() == ["error: this transfer has expired"]


def test_admin_purge_shows_then_deletes_what_is_due(tmp_path: Path) -> None:
    # The server's own rounds are an hour apart: only `pli admin purge` deletes anything here.
    with running_server(tmp_path, {"PLI_PURGE_INTERVAL": "1h"}) as server:
        transfer, _bob = _send_expiring(server, tmp_path)
        [blob] = _blob_files(server)
        time.sleep(parse_duration(EXPIRES).total_seconds())  # it was created before send returned

        planned = server.admin("purge", "--dry-run", "--json")
        assert planned.returncode == 0, planned.stderr
        # The transfer, and the row of its finished upload (no bytes of its own).
        items = json.loads(planned.stdout)["items"]
        assert transfer in [i["id"] for i in items]
        assert sorted((i["reason"], i["bytes"]) for i in items) == [
            ("abandoned-upload", 0),
            ("expired", blob.stat().st_size),
        ]
        size = blob.stat().st_size
        shown = server.admin("purge", "--dry-run").stdout.splitlines()
        assert f"{transfer}  expired  {size} bytes" in shown
        assert shown[-1] == f"total: 2 item(s), {size} bytes would be deleted"
        assert blob.exists()  # a dry run deletes nothing, and records nothing
        assert not [r for r in _audit(server) if r["event"] == "admin.action" and _purge(r)]

        done = server.admin("purge")
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[-1] == f"total: 2 item(s), {size} bytes deleted"
        assert not blob.exists()
        assert _events_of(server, transfer)[-2:] == ["transfer.expired", "transfer.purged"]
        [action] = [r for r in _audit(server) if r["event"] == "admin.action" and _purge(r)]
        assert action["actor"].startswith("local:")
        assert action["details"] == {"action": "purge", "items": 2, "bytes": size}


def _purge(record: dict[str, Any]) -> bool:
    return bool(record["details"].get("action") == "purge")
