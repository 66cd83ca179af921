"""The allocator policy `pli serve` sets: a login's argon2 memory is handed back, not kept."""

from __future__ import annotations

import subprocess
import sys

import pytest

# In a fresh interpreter, so that the policy is set (or not) before any large block is freed.
# A 30 MiB block freed first raises glibc's own threshold, as the server's buffers do; then a
# worker thread checks a password with the server's argon2 parameters.
_PROBE = """
import sys, threading
from pli.server import memory
if sys.argv[1] == "policy":
    assert memory.hand_back_large_blocks()
from argon2 import PasswordHasher
hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
stored = hasher.hash("a password")
del stored
block = bytearray(30 << 20)
del block

def anon_kib():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

def check():
    try:
        hasher.verify(hasher.hash("x"), "y")
    except Exception:
        pass

before = anon_kib()
for _ in range(3):
    worker = threading.Thread(target=check)
    worker.start()
    worker.join()
print(anon_kib() - before)
"""


def _growth_kib(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_a_password_check_leaves_no_memory_behind() -> None:
    assert _growth_kib("policy") < 4 * 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_without_the_policy_the_memory_stays() -> None:
    """The probe itself can see the difference: glibc keeps the 19 MiB in the thread's heap."""
    assert _growth_kib("default") > 15 * 1024
