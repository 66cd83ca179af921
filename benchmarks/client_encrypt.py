"""The client's encryption alone, in a process of its own: the same pipeline `pli send` runs
(read, seal into parts, hash the parts), with the parts written to a file instead of
uploaded. Prints the seconds it took, from opening the source to closing the output; the
interpreter's start-up is measured separately (benchmarks/commands.py).

    python -m benchmarks.client_encrypt AGE_RECIPIENT SOURCE TARGET
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pli.client.upload import Digests, encrypted_parts
from pli.crypto.age import Encryptor, Recipient


def encrypt_file(recipient: str, source: Path, target: Path) -> float:
    start = time.perf_counter()
    size = source.stat().st_size
    encryptor = Encryptor.to_recipients([Recipient.parse(recipient)])
    with target.open("wb", buffering=0) as out:
        for part in encrypted_parts(source, size, encryptor, Digests()):
            view = part.data
            while view:
                view = view[out.write(view) or 0 :]
    return time.perf_counter() - start


def main() -> None:
    recipient, source, target = sys.argv[1:4]
    print(f"{encrypt_file(recipient, Path(source), Path(target)):.6f}")


if __name__ == "__main__":
    main()
