"""Large files. Send + get through `pli serve` against `age | curl` into nginx and back; the
client's encryption alone against `age -e`; the server's ingest and egress alone against
nginx, with curl as the client of both; the peak memory of client and server at several sizes
against age and nginx."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    MIB,
    TIMEOUT,
    Pair,
    alternate,
    make_payload,
    peak_rss_mib,
    process_peak_rss_mib,
    process_rss_mib,
    reset_peak_rss,
)
from benchmarks.references import (
    age_curl_upload,
    age_decrypt,
    age_decrypt_command,
    age_encrypt,
    age_encrypt_command,
    curl_age_download,
    curl_config,
    curl_get,
    curl_put,
)
from benchmarks.report import Row, mib, ratio, seconds, throughput
from benchmarks.rig import TUS, Rig, get, measured, send

ROOT = Path(__file__).resolve().parents[1]
FLAT_MIB = 10.0  # "flat": the largest size's peak within this of the smallest's
MEMORY_LIMIT_MIB = 100.0


def _size_label(size: int) -> str:
    return f"{size / (1 << 30):g} GiB" if size >= 1 << 30 else f"{size / MIB:g} MiB"


def _median_after(values: list[float], warmup: int) -> float:
    kept = sorted(values[warmup:])
    middle = len(kept) // 2
    return kept[middle] if len(kept) % 2 else (kept[middle - 1] + kept[middle]) / 2


def _check_size(path: Path, size: int) -> None:
    if path.stat().st_size != size:
        raise RuntimeError(f"{path} holds {path.stat().st_size} bytes, not {size}")


# --- send + get -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendGet:
    size: int
    total: Pair
    send: float
    get: float
    upload: float  # age | curl -T
    download: float  # curl | age -d

    def rows(self) -> list[Row]:
        label = _size_label(self.size)
        return [
            Row(
                "send + get",
                f"{label}, round trip",
                seconds(self.total.pli),
                f"{seconds(self.total.reference)} (age | curl, nginx)",
                ratio(self.total.speedup),
                ">= 1.2x",
                self.total.speedup >= 1.2,
            ),
            Row(
                "send + get",
                f"{label}, `pli send` / `age -r | curl -T -`",
                f"{seconds(self.send)}, {throughput(self.size, self.send)}",
                f"{seconds(self.upload)}, {throughput(self.size, self.upload)}",
                ratio(self.upload / self.send),
            ),
            Row(
                "send + get",
                f"{label}, `pli get` / `curl | age -d`",
                f"{seconds(self.get)}, {throughput(self.size, self.get)}",
                f"{seconds(self.download)}, {throughput(self.size, self.download)}",
                ratio(self.download / self.get),
            ),
        ]


def send_get(rig: Rig, payload: Path, *, rounds: int, warmup: int) -> SendGet:
    size = payload.stat().st_size
    sends: list[float] = []
    gets: list[float] = []
    ups: list[float] = []
    downs: list[float] = []

    def ours() -> float:
        out = rig.workdir / "pli-got"
        send_s, transfer_id = send(rig.alice, payload, rig.bob)
        get_s = get(rig.bob, transfer_id, out)
        _check_size(out / payload.name, size)
        shutil.rmtree(out)
        rig.revoke(transfer_id)
        sends.append(send_s)
        gets.append(get_s)
        return send_s + get_s

    def theirs() -> float:
        url = f"{rig.nginx.url}/reference.age"
        target = rig.workdir / "reference-got"
        up = age_curl_upload(rig.key, payload, url)
        down = curl_age_download(rig.key, url, target)
        _check_size(target, size)
        target.unlink()
        (rig.nginx.www / "reference.age").unlink()
        ups.append(up)
        downs.append(down)
        return up + down

    total = alternate(ours, theirs, rounds=rounds, warmup=warmup)
    return SendGet(
        size,
        total,
        _median_after(sends, warmup),
        _median_after(gets, warmup),
        _median_after(ups, warmup),
        _median_after(downs, warmup),
    )


# --- the client's encryption alone ------------------------------------------------------------


@dataclass(frozen=True)
class Encryption:
    size: int
    times: Pair

    def rows(self) -> list[Row]:
        return [
            Row(
                "client encryption",
                f"{_size_label(self.size)}, file to file",
                f"{seconds(self.times.pli)}, {throughput(self.size, self.times.pli)}",
                f"{seconds(self.times.reference)}, {throughput(self.size, self.times.reference)}"
                " (age -e)",
                ratio(self.times.speedup),
                ">= 1.2x",
                self.times.speedup >= 1.2,
            )
        ]


def pli_encrypt(recipient: str, source: Path, target: Path) -> float:
    """The client's encryption pipeline in a process of its own (benchmarks/client_encrypt.py)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.client_encrypt", recipient, str(source), str(target)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    return float(done.stdout)


def client_encryption(rig: Rig, payload: Path, *, rounds: int, warmup: int) -> Encryption:
    ours_out, theirs_out = rig.workdir / "pli.age", rig.workdir / "age.age"

    def clean() -> None:
        ours_out.unlink(missing_ok=True)
        theirs_out.unlink(missing_ok=True)

    times = alternate(
        lambda: pli_encrypt(rig.key.recipient, payload, ours_out),
        lambda: age_encrypt(rig.key, payload, theirs_out),
        rounds=rounds,
        warmup=warmup,
        after=clean,
    )
    # What pli wrote is a standard age file: the age CLI decrypts it.
    pli_encrypt(rig.key.recipient, payload, ours_out)
    age_decrypt(rig.key, ours_out, rig.workdir / "pli.plain")
    _check_size(rig.workdir / "pli.plain", payload.stat().st_size)
    (rig.workdir / "pli.plain").unlink()
    clean()
    return Encryption(payload.stat().st_size, times)


# --- the server alone: ingest and egress, curl as the client ----------------------------------


@dataclass(frozen=True)
class ServerIO:
    size: int
    egress: Pair
    ingest: Pair | None  # None: the server has no tus upload endpoint yet
    ingest_problem: str = ""

    def rows(self) -> list[Row]:
        label = _size_label(self.size)
        egress = Row(
            "server alone",
            f"egress: curl GET of a {label} blob",
            throughput(self.size, self.egress.pli),
            f"{throughput(self.size, self.egress.reference)} (nginx static)",
            ratio(self.egress.speedup),
            ">= 0.9x",
            self.egress.speedup >= 0.9,
        )
        if self.ingest is None:
            ingest = Row(
                "server alone",
                f"ingest: curl PATCH of {label} (tus)",
                f"pending: {self.ingest_problem}",
                "nginx WebDAV PUT",
                "",
                ">= 0.7x",
            )
        else:
            ingest = Row(
                "server alone",
                f"ingest: curl PATCH of {label} (tus), one request",
                throughput(self.size, self.ingest.pli),
                f"{throughput(self.size, self.ingest.reference)} (nginx WebDAV PUT)",
                ratio(self.ingest.speedup),
                ">= 0.7x",
                self.ingest.speedup >= 0.7,
            )
        return [ingest, egress]


def _tus_problem(rig: Rig) -> str:
    """Why the server cannot take a tus upload, or "" when it can."""
    with rig.api(rig.alice) as api:
        answer = api.options("/api/v1/uploads", headers=TUS)
    if answer.status_code != 204 or "1.0.0" not in answer.headers.get("tus-version", ""):
        return f"no tus endpoint (OPTIONS /api/v1/uploads answered {answer.status_code})"
    return ""


def ingest(rig: Rig, payload: Path, *, rounds: int, warmup: int) -> Pair:
    size = payload.stat().st_size
    headers = {
        "Authorization": f"Bearer {rig.token(rig.alice)}",
        **TUS,
        "Upload-Offset": "0",
        "Content-Type": "application/offset+octet-stream",
    }
    config = curl_config(rig.workdir / "curl-tus.conf", headers)
    started: list[str] = []

    def ours() -> float:
        transfer_id, url = rig.new_upload(size)
        started.append(transfer_id)
        return curl_put(payload, url, config=config, method="PATCH")

    def theirs() -> float:
        return curl_put(payload, f"{rig.nginx.url}/ingest.bin")

    def clean() -> None:
        while started:
            rig.revoke(started.pop())
        (rig.nginx.www / "ingest.bin").unlink(missing_ok=True)

    try:
        return alternate(ours, theirs, rounds=rounds, warmup=warmup, after=clean)
    finally:
        config.unlink()


def egress(rig: Rig, payload: Path, *, rounds: int, warmup: int) -> Pair:
    _, transfer_id = send(rig.alice, payload, rig.bob)
    url = rig.file_url(transfer_id)
    curl_put(payload, f"{rig.nginx.url}/egress.bin")
    config = rig.curl_auth(rig.bob)
    try:
        return alternate(
            lambda: curl_get(url, config=config),
            lambda: curl_get(f"{rig.nginx.url}/egress.bin"),
            rounds=rounds,
            warmup=warmup,
        )
    finally:
        config.unlink()
        (rig.nginx.www / "egress.bin").unlink()
        rig.revoke(transfer_id)


def server_io(rig: Rig, payload: Path, *, rounds: int, warmup: int) -> ServerIO:
    size = payload.stat().st_size
    out = egress(rig, payload, rounds=rounds, warmup=warmup)
    problem = _tus_problem(rig)
    if problem:
        return ServerIO(size, out, None, problem)
    return ServerIO(size, out, ingest(rig, payload, rounds=rounds, warmup=warmup))


# --- peak memory ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Footprint:
    """Peak RSS at one size, MiB."""

    size: int
    send: float
    get: float
    server: float
    server_idle: float  # the server's resident memory just before the send
    age_encrypt: float
    age_decrypt: float
    nginx: float


@dataclass(frozen=True)
class Memory:
    at: list[Footprint]
    server_reset: bool  # False: the server's figures are peaks since it started

    def _row(
        self, figure: str, ours: list[float], theirs: list[float], name: str, note: str = ""
    ) -> Row:
        flat = max(ours) - ours[0] <= FLAT_MIB
        sizes = " / ".join(_size_label(f.size) for f in self.at)
        return Row(
            "peak memory",
            f"{figure} at {sizes}",
            " / ".join(mib(x) for x in ours) + note,
            " / ".join(mib(x) for x in theirs) + f" ({name})",
            "",
            f"< {MEMORY_LIMIT_MIB:.0f} MiB, flat",
            flat and max(ours) < MEMORY_LIMIT_MIB,
        )

    def rows(self) -> list[Row]:
        server = "server" + ("" if self.server_reset else " (peak since start)")
        at = self.at
        return [
            self._row("`pli send`", [f.send for f in at], [f.age_encrypt for f in at], "age -e"),
            self._row("`pli get`", [f.get for f in at], [f.age_decrypt for f in at], "age -d"),
            self._row(
                server,
                [f.server for f in at],
                [f.nginx for f in at],
                "nginx worker",
                f" (idle: {mib(min(f.server_idle for f in at))})",
            ),
        ]


def _footprint(rig: Rig, payload: Path) -> tuple[Footprint, bool]:
    size = payload.stat().st_size
    pid = rig.server.process.pid
    reset = reset_peak_rss(pid)
    idle = process_rss_mib(pid)
    sent = measured(rig.alice, "send", str(payload), "--to", rig.bob.email, "--json")
    transfer_id = str(sent.json()["id"])
    got = measured(rig.bob, "get", transfer_id, "-o", str(rig.workdir / "memory-got"))
    server = process_peak_rss_mib(pid)
    shutil.rmtree(rig.workdir / "memory-got")
    rig.revoke(transfer_id)
    encrypted = rig.workdir / "memory.age"
    age_enc = peak_rss_mib(age_encrypt_command(rig.key, payload, encrypted))
    age_dec = peak_rss_mib(age_decrypt_command(rig.key, encrypted, Path(os.devnull)))
    encrypted.unlink()
    rig.nginx.reset_peak_rss()
    curl_put(payload, f"{rig.nginx.url}/memory.bin")
    curl_get(f"{rig.nginx.url}/memory.bin")
    nginx = rig.nginx.worker_peak_rss_mib()
    (rig.nginx.www / "memory.bin").unlink()
    figures = Footprint(
        size,
        send=sent.maxrss_kib / 1024,
        get=got.maxrss_kib / 1024,
        server=server,
        server_idle=idle,
        age_encrypt=age_enc,
        age_decrypt=age_dec,
        nginx=nginx,
    )
    return figures, reset


def memory(rig: Rig, sizes: Sequence[int]) -> Memory:
    found: list[Footprint] = []
    resets: list[bool] = []
    for size in sizes:
        payload = make_payload(rig.workdir / f"memory-{size}.bin", size)
        try:
            figures, reset = _footprint(rig, payload)
        finally:
            payload.unlink()
        found.append(figures)
        resets.append(reset)
    return Memory(found, all(resets))
