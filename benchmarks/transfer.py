"""Send + get of one large file through a real `pli serve` on loopback, beside the `age` CLI
encrypting and decrypting the same file, with the peak memory of every process.

    .venv/bin/python -m benchmarks.transfer --size-mib 2048
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.conftest import make_user, start_server, stop_server

MIB = 1 << 20


@dataclass(frozen=True)
class Figures:
    size_mib: int
    send_s: float
    get_s: float
    age_encrypt_s: float
    age_decrypt_s: float
    send_rss_mib: float
    get_rss_mib: float
    server_growth_mib: float

    def table(self) -> str:
        pli_total = self.send_s + self.get_s
        age_total = self.age_encrypt_s + self.age_decrypt_s
        return "\n".join(
            [
                f"| {self.size_mib} MiB | pli | age CLI (file to file, no network) | ratio |",
                "|---|---|---|---|",
                f"| encrypt+upload / encrypt | {self.send_s:.2f} s | {self.age_encrypt_s:.2f} s "
                f"| {self.age_encrypt_s / self.send_s:.2f}x |",
                f"| download+decrypt / decrypt | {self.get_s:.2f} s | {self.age_decrypt_s:.2f} s "
                f"| {self.age_decrypt_s / self.get_s:.2f}x |",
                f"| round trip | {pli_total:.2f} s | {age_total:.2f} s "
                f"| {age_total / pli_total:.2f}x |",
                f"| peak RSS | send {self.send_rss_mib:.0f} MiB, get {self.get_rss_mib:.0f} MiB, "
                f"server +{self.server_growth_mib:.0f} MiB | | |",
            ]
        )


def _timed(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - start


def run(size_mib: int, workdir: Path) -> Figures:
    source = workdir / "payload.bin"
    with source.open("wb") as handle:
        block = bytes(range(256)) * (MIB // 256)
        for _ in range(size_mib):
            handle.write(block)
    server = start_server(workdir, None)
    try:
        alice = make_user(server, workdir, "alice")
        bob = make_user(server, workdir, "bob")
        before = server.peak_rss_kib()
        start = time.perf_counter()
        sent = alice.ok("send", str(source), "--to", bob.email, "--json")
        send_s = time.perf_counter() - start
        start = time.perf_counter()
        got = bob.ok("get", sent.json()["id"], "-o", str(workdir / "out"))
        get_s = time.perf_counter() - start
        growth = (server.peak_rss_kib() - before) / 1024
        key = workdir / "bob.key"
        key.write_text(bob.ok("keys", "export-identity").stdout)
        recipient = subprocess.run(
            ["age-keygen", "-y", str(key)], check=True, capture_output=True, text=True
        ).stdout.strip()
        encrypted = workdir / "payload.age"
        age_enc = _timed(["age", "-r", recipient, "-o", str(encrypted), str(source)])
        age_dec = _timed(
            ["age", "-d", "-i", str(key), "-o", str(workdir / "plain"), str(encrypted)]
        )
    finally:
        stop_server(server)
    return Figures(
        size_mib,
        send_s,
        get_s,
        age_enc,
        age_dec,
        sent.maxrss_kib / 1024,
        got.maxrss_kib / 1024,
        growth,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pli-bench-") as tmp:
        print(run(args.size_mib, Path(tmp)).table())


if __name__ == "__main__":
    main()
