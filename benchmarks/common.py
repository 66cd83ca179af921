"""What every benchmark part shares: payloads, timed runs of processes and pipelines, medians
of alternating rounds, and peak memory of a child process measured on its own."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
TIMEOUT = 600.0  # no single command of the benchmark may take longer


def make_payload(path: Path, size: int) -> Path:
    """`size` bytes of incompressible data (one random MiB, repeated), written once."""
    block = os.urandom(MIB)
    with path.open("wb") as handle:
        for _ in range(size // MIB):
            handle.write(block)
        handle.write(block[: size % MIB])
    return path


def mb_per_s(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


def timed_run(args: Sequence[str], *, timeout: float = TIMEOUT) -> float:
    """Wall time of one command, which must succeed; its output is discarded."""
    start = time.perf_counter()
    subprocess.run(
        list(args),
        check=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    return time.perf_counter() - start


def timed_pipeline(
    first: Sequence[str], second: Sequence[str], *, timeout: float = TIMEOUT
) -> float:
    """Wall time of `first | second`; both must succeed."""
    start = time.perf_counter()
    producer = subprocess.Popen(
        list(first), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    consumer: subprocess.Popen[bytes] | None = None
    try:
        consumer = subprocess.Popen(
            list(second),
            stdin=producer.stdout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if producer.stdout is not None:
            producer.stdout.close()  # the consumer holds the only read end: SIGPIPE works
        consumer.wait(timeout=timeout)
        producer.wait(timeout=max(1.0, timeout - (time.perf_counter() - start)))
        elapsed = time.perf_counter() - start
        if producer.returncode or consumer.returncode:
            raise RuntimeError(f"{first[0]} | {second[0]} failed")
        return elapsed
    finally:
        for process in (producer, consumer):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


# A child's peak RSS as the kernel reports it includes the pages of the process it was forked
# from, before exec: a small command forked from this large process would look large. So the
# command is started from a fresh, small interpreter, which reports what wait4 says of it.
_LAUNCHER = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as rss:
    rss.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def peak_rss_mib(args: Sequence[str], *, timeout: float = TIMEOUT) -> float:
    """The peak resident memory of one command, which must succeed."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "rss"
        subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(report), *args],
            check=True,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
        return int(report.read_text()) / 1024


def reset_peak_rss(pid: int) -> bool:
    """Start the kernel's peak-RSS count of `pid` afresh (Linux `clear_refs` 5)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _status_mib(pid: int, field: str) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith(f"{field}:"))
    return int(line.split()[1]) / 1024


def process_peak_rss_mib(pid: int) -> float:
    return _status_mib(pid, "VmHWM")


def process_rss_mib(pid: int) -> float:
    return _status_mib(pid, "VmRSS")


@dataclass(frozen=True)
class Pair:
    """The median of several rounds of pli and of its reference, timed alternately."""

    pli: float
    reference: float

    @property
    def speedup(self) -> float:
        """How much faster pli is than the reference (both figures are durations)."""
        return self.reference / self.pli


def alternate(
    pli: Callable[[], float],
    reference: Callable[[], float],
    *,
    rounds: int,
    warmup: int,
    after: Callable[[], None] | None = None,
) -> Pair:
    """Run both sides `warmup` times untimed, then `rounds` times, alternating which goes
    first (the page cache and fresh memory favour whichever side runs second); medians."""
    ours: list[float] = []
    theirs: list[float] = []
    for i in range(warmup + rounds):
        order = [(pli, ours), (reference, theirs)]
        for side, figures in order if i % 2 == 0 else order[::-1]:
            elapsed = side()
            if i >= warmup:
                figures.append(elapsed)
        if after is not None:
            after()
    return Pair(statistics.median(ours), statistics.median(theirs))


def median_of(function: Callable[[], float], times: int) -> float:
    return statistics.median(function() for _ in range(times))
