"""The hand-made references pli is measured against: nginx (WebDAV PUT, static GET) on loopback,
the `age` CLI, and curl as the HTTP client."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.integration.conftest import free_port

from benchmarks.common import process_peak_rss_mib, reset_peak_rss, timed_pipeline, timed_run

NO_EXPECT = "Expect:"  # no `Expect: 100-continue` round trip before a body, on either side


def nginx_binary() -> str:
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found is None:
        raise RuntimeError("nginx is not installed: run scripts/system-deps.sh")
    return found


_NGINX_CONF = """
daemon off;
master_process on;
worker_processes 1;
user {user};
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        client_max_body_size 0;
        location / {{
            dav_methods PUT;
            create_full_put_path on;
        }}
    }}
}}
"""


@dataclass
class Nginx:
    """nginx on loopback: PUT stores a file under `www`, GET serves it back."""

    url: str
    www: Path
    process: subprocess.Popen[bytes]

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def reset_peak_rss(self) -> None:
        for pid in self.worker_pids():
            reset_peak_rss(pid)

    def worker_peak_rss_mib(self) -> float:
        return max(process_peak_rss_mib(pid) for pid in self.worker_pids())


def _wait_listening(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited:\n{log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nginx did not start listening")


@contextmanager
def running_nginx(root: Path) -> Iterator[Nginx]:
    """nginx with its own configuration, files and logs under `root`, stopped at the end."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "www").mkdir(exist_ok=True)
    port = free_port()
    user = pwd.getpwuid(os.geteuid()).pw_name  # workers run as us (only matters under root)
    conf = root / "nginx.conf"
    conf.write_text(_NGINX_CONF.format(root=root, port=port, user=user))
    log = root / "stderr.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            [nginx_binary(), "-p", str(root), "-c", str(conf), "-e", str(root / "error.log")],
            stdin=subprocess.DEVNULL,
            stdout=stderr,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(port, process, log)
        yield Nginx(f"http://127.0.0.1:{port}", root / "www", process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- age ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgeKey:
    identity: Path  # a file holding AGE-SECRET-KEY-1…
    recipient: str  # age1…


def age_key(identity_text: str, path: Path) -> AgeKey:
    """An age identity file for `identity_text`, and its recipient."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(identity_text.strip() + "\n")
    recipient = subprocess.run(
        ["age-keygen", "-y", str(path)], check=True, capture_output=True, text=True, timeout=30
    ).stdout.strip()
    return AgeKey(path, recipient)


def age_encrypt(key: AgeKey, source: Path, target: Path) -> float:
    return timed_run(["age", "-r", key.recipient, "-o", str(target), str(source)])


def age_decrypt(key: AgeKey, source: Path, target: Path) -> float:
    return timed_run(["age", "-d", "-i", str(key.identity), "-o", str(target), str(source)])


def age_encrypt_command(key: AgeKey, source: Path, target: Path) -> list[str]:
    return ["age", "-r", key.recipient, "-o", str(target), str(source)]


def age_decrypt_command(key: AgeKey, source: Path, target: Path) -> list[str]:
    return ["age", "-d", "-i", str(key.identity), "-o", str(target), str(source)]


# --- curl ---------------------------------------------------------------------------------------

CURL = ["curl", "--silent", "--show-error", "--fail", "--max-time", "600"]


def age_curl_upload(key: AgeKey, source: Path, url: str) -> float:
    """`age -r KEY file | curl -T - URL`."""
    return timed_pipeline(
        ["age", "-r", key.recipient, str(source)],
        [*CURL, "-H", NO_EXPECT, "-T", "-", "-o", os.devnull, url],
    )


def curl_age_download(key: AgeKey, url: str, target: Path) -> float:
    """`curl URL | age -d -i KEY > file`."""
    return timed_pipeline([*CURL, url], ["age", "-d", "-i", str(key.identity), "-o", str(target)])


def curl_put(source: Path, url: str, *, config: Path | None = None, method: str = "PUT") -> float:
    """Upload a file as one request body; `config` is a curl config file (headers)."""
    extra = ["--config", str(config)] if config else []
    return timed_run(
        [*CURL, *extra, "-H", NO_EXPECT, "-X", method, "-T", str(source), "-o", os.devnull, url]
    )


def curl_get(url: str, *, config: Path | None = None) -> float:
    """Download to nowhere: what the server sends, and nothing else, is measured."""
    extra = ["--config", str(config)] if config else []
    return timed_run([*CURL, *extra, "-o", os.devnull, url])


def curl_config(path: Path, headers: dict[str, str]) -> Path:
    """A curl config file holding `headers`, readable by us only: a bearer token on a command
    line is visible to every user of the machine."""
    lines = []
    for name, value in headers.items():
        text = f"{name}: {value}"
        if not text.isascii() or not text.isprintable() or '"' in text or "\\" in text:
            raise ValueError(f"header {name} cannot be written to a curl config")
        lines.append(f'header = "{text}"\n')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.writelines(lines)
    return path


# --- versions -----------------------------------------------------------------------------------


def _first_line(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return "not installed"
    text = (done.stdout or done.stderr).strip()
    return text.splitlines()[0] if text else "unknown"


def tool_versions() -> dict[str, str]:
    return {
        "age": _first_line(["age", "--version"]),
        "nginx": _first_line([nginx_binary(), "-v"]).removeprefix("nginx version: "),
        "curl": " ".join(_first_line(["curl", "--version"]).split()[:2]),
    }
