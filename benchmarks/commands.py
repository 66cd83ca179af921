"""Small files and fixed costs: 1 KiB send + get round trips per second against `age | curl`,
each command's start-up, and the key unlock at the default work factor against scrypt alone."""

from __future__ import annotations

import hashlib
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.conftest import PASSPHRASE, User, make_user

from benchmarks.common import alternate, make_payload, median_of, peak_rss_mib, timed_run
from benchmarks.references import age_curl_upload, curl_age_download
from benchmarks.report import Row, mib, ratio, seconds
from benchmarks.rig import Rig, get, measured, pli, send
from pli.client.sdk import Client
from pli.crypto.age import DEFAULT_SCRYPT_WORK_FACTOR

SMALL = 1 << 10


@dataclass(frozen=True)
class RoundTrips:
    count: int
    send: float  # medians, seconds
    get: float
    upload: float
    download: float
    round_trip: float
    reference_round_trip: float

    def rows(self) -> list[Row]:
        rate, reference = 1 / self.round_trip, 1 / self.reference_round_trip
        return [
            Row(
                "small files",
                "1 KiB send + get, round trips per second",
                f"{rate:.2f}/s",
                f"{reference:.2f}/s (age | curl, nginx)",
                ratio(rate / reference),
            ),
            Row(
                "small files",
                "`pli send` 1 KiB / `age -r | curl -T -`",
                seconds(self.send),
                seconds(self.upload),
                ratio(self.upload / self.send),
            ),
            Row(
                "small files",
                "`pli get` 1 KiB / `curl | age -d`",
                seconds(self.get),
                seconds(self.download),
                ratio(self.download / self.get),
            ),
        ]


def round_trips(rig: Rig, *, count: int, warmup: int) -> RoundTrips:
    payload = make_payload(rig.workdir / "small.bin", SMALL)
    details: dict[str, list[float]] = {"send": [], "get": [], "up": [], "down": []}

    def ours() -> float:
        send_s, transfer_id = send(rig.alice, payload, rig.bob)
        get_s = get(rig.bob, transfer_id, rig.workdir / f"small-{transfer_id}")
        details["send"].append(send_s)
        details["get"].append(get_s)
        return send_s + get_s

    def theirs() -> float:
        url = f"{rig.nginx.url}/small.age"
        up = age_curl_upload(rig.key, payload, url)
        down = curl_age_download(rig.key, url, rig.workdir / "small.out")
        details["up"].append(up)
        details["down"].append(down)
        return up + down

    pair = alternate(ours, theirs, rounds=count, warmup=warmup)
    kept = {name: statistics.median(values[warmup:]) for name, values in details.items()}
    return RoundTrips(
        count, kept["send"], kept["get"], kept["up"], kept["down"], pair.pli, pair.reference
    )


@dataclass(frozen=True)
class FixedCosts:
    start_up: float  # `pli keys show`: start-up, no network, no key
    start_up_reference: float  # `age-keygen -y`: the same job for the age CLI
    unlock: float  # opening this device's keys at the default work factor, in process
    scrypt: float  # scrypt alone with the same parameters
    unlock_rss: float  # peak RSS of a command that unlocks keys of the default work factor
    scrypt_rss: float
    work_factor: int

    def rows(self) -> list[Row]:
        kdf = f"scrypt N=2^{self.work_factor}, r=8"
        return [
            Row(
                "fixed costs",
                "start-up: `pli keys show` / `age-keygen -y`",
                seconds(self.start_up),
                seconds(self.start_up_reference),
                ratio(self.start_up_reference / self.start_up),
            ),
            Row(
                "fixed costs",
                f"key unlock ({kdf})",
                seconds(self.unlock),
                f"{seconds(self.scrypt)} ({kdf} alone)",
                ratio(self.scrypt / self.unlock),
            ),
            Row(
                "fixed costs",
                "peak memory of `pli keys export-identity` (unlocks)",
                mib(self.unlock_rss),
                f"{mib(self.scrypt_rss)} ({kdf} alone, in Python)",
            ),
        ]


def _strong_user(rig: Rig) -> User:
    """A user whose keys have the default work factor, as a real user's do (the others use a
    low one so the transfer figures measure transfers)."""
    dora = make_user(rig.server, rig.workdir, "dora", keys=False)
    dora.extra_env["PLI_KDF_WORK_FACTOR"] = str(DEFAULT_SCRYPT_WORK_FACTOR)
    dora.ok("keys", "init")
    return dora


def _unlock(home: Path) -> float:
    client = Client(home)
    start = time.perf_counter()
    client.unlock(PASSPHRASE)
    return time.perf_counter() - start


def _scrypt(work_factor: int) -> float:
    start = time.perf_counter()
    hashlib.scrypt(
        b"a passphrase", salt=os.urandom(16), n=1 << work_factor, r=8, p=1, maxmem=1 << 30
    )
    return time.perf_counter() - start


_SCRYPT_ALONE = (
    "import hashlib, sys; "
    "hashlib.scrypt(b'p', salt=bytes(16), n=1 << int(sys.argv[1]), r=8, p=1, maxmem=1 << 30)"
)


def fixed_costs(rig: Rig, *, times: int) -> FixedCosts:
    dora = _strong_user(rig)
    wf = DEFAULT_SCRYPT_WORK_FACTOR
    start_up = median_of(lambda: pli(rig.alice, "keys", "show")[0], times)
    reference = median_of(lambda: timed_run(["age-keygen", "-y", str(rig.key.identity)]), times)
    unlock = alternate(lambda: _unlock(dora.home), lambda: _scrypt(wf), rounds=times, warmup=1)
    unlock_rss = measured(dora, "keys", "export-identity").maxrss_kib / 1024
    scrypt_rss = peak_rss_mib([sys.executable, "-c", _SCRYPT_ALONE, str(wf)])
    return FixedCosts(start_up, reference, unlock.pli, unlock.reference, unlock_rss, scrypt_rss, wf)
