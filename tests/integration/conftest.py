"""Integration fixtures: a real `pli serve` (SQLite or PostgreSQL) and real `pli` CLI users."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from pli.client.sdk import Client
from pli.crypto.identity import DeviceIdentity
from pli.server.auth import service as accounts
from pli.server.main import operator
from pli.store.db import Database, database_url, make_engine

PLI = str(Path(sys.executable).with_name("pli"))
PASSWORD = "correct-horse-battery-staple"
PASSPHRASE = "a device passphrase for tests"
POSTGRES_ADMIN_URL = os.environ.get(
    "PLI_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    url: str
    data: Path
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    database_url: str | None

    def admin(self, *args: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "PLI_PASSWORD": password}
        return subprocess.run(
            [PLI, "admin", *args, "--data", str(self.data)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def peak_rss_kib(self) -> int:
        return self._status_kib("VmHWM:")

    def rss_kib(self) -> int:
        return self._status_kib("VmRSS:")

    def _status_kib(self, field: str) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith(field))
        return int(line.split()[1])


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str
    maxrss_kib: int = 0

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class User:
    email: str
    home: Path
    server: Server
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **self.server.env,
            "PLI_HOME": str(self.home),
            "PLI_PASSWORD": PASSWORD,
            "PLI_PASSPHRASE": PASSPHRASE,
            "PLI_KDF_WORK_FACTOR": "10",
            **self.extra_env,
        }

    def run(self, *args: str, cwd: Path | None = None, timeout: float = 300) -> Result:
        """Run the real CLI, and measure its own peak memory (see `_LAUNCHER`)."""
        with tempfile.TemporaryDirectory() as tmp:
            out, err, rss = (Path(tmp) / name for name in ("out", "err", "rss"))
            with out.open("wb") as stdout, err.open("wb") as stderr:
                proc = subprocess.run(
                    [sys.executable, "-c", _LAUNCHER, str(rss), PLI, *args],
                    env=self.env(),
                    cwd=cwd,
                    stdout=stdout,
                    stderr=stderr,
                    stdin=subprocess.DEVNULL,
                    timeout=timeout,
                    check=False,
                )
            peak = int(rss.read_text()) if rss.exists() else 0
            return Result(proc.returncode, out.read_text(), err.read_text(), peak)

    def ok(self, *args: str, cwd: Path | None = None) -> Result:
        result = self.run(*args, cwd=cwd)
        assert result.returncode == 0, f"pli {' '.join(args)} failed:\n{result.stderr}"
        return result

    def send(self, *paths: Path, to: str, extra: tuple[str, ...] = ()) -> str:
        args = ["send", *map(str, paths), "--to", to, "--json", *extra]
        return str(self.ok(*args).json()["id"])


# A child's peak RSS as the kernel reports it includes the pages of the process it was forked
# from, before exec: forked from a large test process, a small CLI would look large. So the CLI
# is started from a fresh, small interpreter, which reports what wait4 says of it.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as rss:
    rss.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pli serve exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"pli serve did not become healthy:\n{log.read_text()}")


def start_server(
    tmp: Path, database_url: str | None, extra_env: dict[str, str] | None = None
) -> Server:
    port = free_port()
    data = tmp / "server-data"
    log = tmp / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLI_")}
    env.update(extra_env or {})
    if database_url:
        env["PLI_DATABASE_URL"] = database_url
    with log.open("wb") as out:
        process = subprocess.Popen(
            [PLI, "serve", "--data", str(data), "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url, process, log)
    return Server(url, data, log, env, process, database_url)


@contextlib.contextmanager
def running_server(tmp: Path, env: dict[str, str]) -> Iterator[Server]:
    """A SQLite server with extra environment, stopped however the block ends."""
    server = start_server(tmp, None, env)
    try:
        yield server
    finally:
        stop_server(server)


def stop_server(server: Server) -> None:
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A real server on each backend; a PostgreSQL schema per test keeps tests independent."""
    database_url = None
    if request.param == "postgres":
        database_url = request.getfixturevalue("fresh_postgres")
    srv = start_server(tmp_path, database_url)
    yield srv
    stop_server(srv)


@pytest.fixture
def sqlite_server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path, None)
    yield srv
    stop_server(srv)


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    name = f"pli_test_{secrets.token_hex(6)}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # name is ours: hex only
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_user(
    server: Server, tmp: Path, name: str, *, keys: bool = True, admin: bool = False
) -> User:
    """An account on `server`, logged in under its own PLI_HOME, with keys unless `keys` is
    False. Set up as `pli admin create-user`, `pli login` and `pli keys init` would, but in this
    process (the account through the server's own service, then the SDK the CLI is a layer
    over): three commands' start-up for every account made would be minutes of the suite.
    Tests of those commands run them for real."""
    email = f"{name}@example.org"
    create_account(server, email, admin=admin)
    user = User(email, tmp / f"home-{name}", server)
    client = Client(home_path=user.home)
    try:
        client.login(server.url, email, PASSWORD)
        if keys:
            client.init_keys(PASSPHRASE, work_factor=10)
    finally:
        client.close()
    return user


def create_account(server: Server, email: str, *, admin: bool = False) -> None:
    """What `pli admin create-user` does, against the server's database."""
    engine = make_engine(database_url(server.data, server.database_url))
    try:
        with Database(engine).session() as session:
            accounts.create_user(
                session, email, PASSWORD, is_admin=admin, now=datetime.now(UTC), actor=operator()
            )
    finally:
        engine.dispose()


def three_people(server: Server, tmp: Path) -> tuple[User, User, User]:
    """alice (sender), bob (recipient), carol (a bystander), all with keys."""
    alice, bob, carol = (make_user(server, tmp, name) for name in ("alice", "bob", "carol"))
    return alice, bob, carol


@pytest.fixture
def people(server: Server, tmp_path: Path) -> tuple[User, User, User]:
    return three_people(server, tmp_path)


# --- keys a browser unlocks cheaply -------------------------------------------------------

CHEAP_PASSPHRASE = "the passphrase of cheap keys"


def escrow_cheap_keys(user: User, passphrase: str = CHEAP_PASSPHRASE) -> None:
    """New keys for `user` (made with `keys=False`), escrowed under `passphrase` at scrypt work
    factor 10, which the CLI refuses for escrow but the browser opens: unlocking them at the
    default (2^18) would leave 256 MiB of scrypt's memory in the page's heap until some later
    collection, and hide any growth below it."""
    identity = DeviceIdentity.generate(user.email)
    body = {
        "bundle": identity.public_bundle().signed,
        "escrow": base64.b64encode(identity.seal(passphrase, 10)).decode("ascii"),
    }
    answer = httpx.post(f"{user.server.url}/api/v1/devices", json=body, headers=bearer(user))
    assert answer.status_code == 201, answer.text


# --- resumable uploads, spoken directly -----------------------------------------------------

TUS = {"tus-resumable": "1.0.0"}


def bearer(user: User) -> dict[str, str]:
    return {"authorization": f"Bearer {(user.home / 'session').read_text()}"}


def upload_metadata(transfer_id: str, file_id: str) -> str:
    """tus Upload-Metadata naming one file slot of a transfer."""
    encoded = (base64.b64encode(v.encode()).decode() for v in (transfer_id, file_id))
    return ",".join(f"{k} {v}" for k, v in zip(("transfer", "file"), encoded, strict=True))


def new_upload(server: Server, sender: User, recipient: str, length: int) -> str:
    """A new one-file transfer and the upload of its file: the upload's address."""
    transfer = httpx.post(
        f"{server.url}/api/v1/transfers",
        json={"recipients": [recipient], "files": 1},
        headers=bearer(sender),
    ).json()
    meta = upload_metadata(transfer["id"], transfer["files"][0]["id"])
    made = httpx.post(
        f"{server.url}/api/v1/uploads",
        headers={**bearer(sender), **TUS, "upload-length": str(length), "upload-metadata": meta},
    )
    assert made.status_code == 201, made.text
    return made.headers["location"]


# --- a server that slips a device in ------------------------------------------------------


def slip_in_device(server: Server, device_id: str) -> None:
    """Make a pending device active with no approval, logged as published: what a server (or
    whoever runs it) can do behind its users' backs. Correspondents must see a key change no
    device of the account vouched for."""
    from sqlalchemy.orm import Session  # noqa: PLC0415

    from pli.crypto import keylog  # noqa: PLC0415
    from pli.crypto.bundle import parse_bundle  # noqa: PLC0415
    from pli.server.keys import log as key_log  # noqa: PLC0415
    from pli.store import models  # noqa: PLC0415
    from pli.store.db import database_url, make_engine  # noqa: PLC0415

    engine = make_engine(database_url(server.data, server.database_url))
    try:
        with Session(engine) as session:
            device = session.get(models.Device, device_id)
            assert device is not None
            assert device.state == "pending"
            bundle = parse_bundle(json.loads(device.bundle))
            entry = keylog.device_published(bundle, device.created_at)
            device.log_index = key_log.append(session, entry)
            device.state = "active"
            session.commit()
    finally:
        engine.dispose()


def device_of(user: User) -> str:
    """The id of the device `user`'s PLI_HOME holds."""
    device: str = json.loads((user.home / "device.json").read_text())["doc"]["device"]
    return device
