"""The stage every part runs on: a real `pli serve` on loopback with two users (alice sends,
bob receives), nginx beside it, and bob's key exported for the `age` CLI. The server serves the
web app built into the package, or the build `PLI_WEB_DIST` names when that is set (as the
browser tests do)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tests.integration.conftest import (
    PLI,
    Result,
    Server,
    User,
    make_user,
    start_server,
    stop_server,
)

from benchmarks.common import TIMEOUT
from benchmarks.references import AgeKey, Nginx, age_key, curl_config, running_nginx

TUS = {"Tus-Resumable": "1.0.0"}


@dataclass
class Rig:
    workdir: Path
    server: Server
    alice: User
    bob: User
    nginx: Nginx
    key: AgeKey  # bob's identity, as the age CLI reads it

    def token(self, user: User) -> str:
        return (user.home / "session").read_text().strip()

    def curl_auth(self, user: User) -> Path:
        """A 0600 curl config sending `user`'s bearer token."""
        path = self.workdir / f"curl-{user.home.name}.conf"
        return curl_config(path, {"Authorization": f"Bearer {self.token(user)}"})

    @contextlib.contextmanager
    def api(self, user: User) -> Iterator[httpx.Client]:
        headers = {"Authorization": f"Bearer {self.token(user)}"}
        with httpx.Client(base_url=self.server.url, headers=headers, timeout=60) as client:
            yield client

    def file_url(self, transfer_id: str) -> str:
        """The address of the (only) file of a transfer bob received."""
        with self.api(self.bob) as api:
            transfer = _ok(api.get(f"/api/v1/transfers/{transfer_id}"))
        file_id = transfer["files"][0]["id"]
        return f"{self.server.url}/api/v1/transfers/{transfer_id}/files/{file_id}"

    def new_upload(self, length: int) -> tuple[str, str]:
        """A transfer from alice to bob with one file, and the tus address of that file's
        upload: (transfer id, upload URL)."""
        with self.api(self.alice) as api:
            body = {"recipients": [self.bob.email], "files": 1}
            transfer = _ok(api.post("/api/v1/transfers", json=body))
            names = {"transfer": transfer["id"], "file": transfer["files"][0]["id"]}
            meta = ",".join(
                f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in names.items()
            )
            headers = {**TUS, "Upload-Length": str(length), "Upload-Metadata": meta}
            created = api.post("/api/v1/uploads", headers=headers)
            if created.status_code != 201:
                raise RuntimeError(f"tus creation answered {created.status_code}: {created.text}")
        return str(transfer["id"]), f"{self.server.url}{created.headers['location']}"

    def revoke(self, transfer_id: str, sender: User | None = None) -> None:
        """Drop a transfer (alice's, unless `sender` is given) and its blobs (to keep the disk
        and page cache small)."""
        with self.api(sender or self.alice) as api:
            answer = api.delete(f"/api/v1/transfers/{transfer_id}")
        if answer.status_code not in (204, 404, 410):
            raise RuntimeError(f"revoking {transfer_id} answered {answer.status_code}")


def pli(user: User, *args: str, timeout: float = TIMEOUT) -> tuple[float, str]:
    """Run the real CLI as `user`; its wall time and output. (`User.run` measures memory
    through a launcher, whose own start-up would count here.)"""
    start = time.perf_counter()
    done = subprocess.run(
        [PLI, *args],
        env=user.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        last = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
        raise RuntimeError(f"pli {args[0]} failed: {last[0]}")
    return elapsed, done.stdout


def measured(user: User, *args: str) -> Result:
    """Run the real CLI as `user` through `User.run`, which measures its peak memory."""
    result = user.run(*args, timeout=TIMEOUT)
    if result.returncode != 0:
        last = result.stderr.strip().splitlines()[-1:] or [f"exit status {result.returncode}"]
        raise RuntimeError(f"pli {args[0]} failed: {last[0]}")
    return result


def send(user: User, path: Path, to: User) -> tuple[float, str]:
    """`pli send`: its wall time and the transfer id."""
    elapsed, out = pli(user, "send", str(path), "--to", to.email, "--json")
    return elapsed, str(json.loads(out)["id"])


def get(user: User, transfer_id: str, out_dir: Path) -> float:
    return pli(user, "get", transfer_id, "-o", str(out_dir))[0]


def _ok(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.url} answered {response.status_code}")
    return response.json()


@contextlib.contextmanager
def running_rig(workdir: Path) -> Iterator[Rig]:
    dist = os.environ.get("PLI_WEB_DIST")  # `start_server` passes on no `PLI_` variable itself
    server = start_server(workdir, None, {"PLI_WEB_DIST": dist} if dist else None)
    try:
        alice = make_user(server, workdir, "alice")
        bob = make_user(server, workdir, "bob")
        key = age_key(bob.ok("keys", "export-identity").stdout, workdir / "bob.key")
        with running_nginx(workdir / "nginx") as nginx:
            yield Rig(workdir, server, alice, bob, nginx, key)
    finally:
        stop_server(server)
