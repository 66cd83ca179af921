"""How the server's C allocator hands memory back to the system.

glibc serves a block of 128 KiB or more with a mapping of its own, returned when freed; but the
first such block freed raises that threshold to its size (up to 32 MiB), and every later block
under it is then carved from the heap of the thread that asked, where it stays once freed. Each
login's argon2 hash (19 MiB) would so keep 19 MiB resident per worker thread that ever checked a
password, for the life of the process.

So the threshold is fixed at 16 MiB: the hash's block is mapped on its own again, while the
transfer paths' buffers (1 to 8 MiB, reused from request to request) stay in the heaps; with a
low threshold they would be mapped afresh, and faulted in again, on every request. And the
worker threads share two heaps rather than up to sixteen (glibc's default on two cores), each
keeping its own free blocks. Other C libraries keep their own policy.
"""

from __future__ import annotations

import ctypes

# glibc's mallopt parameters
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8

MMAP_THRESHOLD = 16 << 20
# What a heap keeps free at its top before giving it back: glibc's own rule, twice the threshold.
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD
ARENAS = 2


def hand_back_large_blocks() -> bool:
    """Set the policy, before the server's threads start; False where the C library is not
    glibc (or refused a setting)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_ARENA_MAX, ARENAS),
    )
    accepted = [mallopt(name, value) for name, value in settings]  # every one, whatever fails
    return all(accepted)
