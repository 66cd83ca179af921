"""`python -m pli.server`: the process `pli serve` turns into.

`pli serve` parses its options, then replaces itself with this (same process, same id): the
client's libraries it was started with (terminal rendering, the HTTP client, about 15 MiB)
would otherwise stay resident for the server's whole life.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pli.errors import PliError
from pli.terminal import printable


def arguments(data: Path, host: str, port: int, cert: Path | None, key: Path | None) -> list[str]:
    """The command line `pli serve` hands over."""
    args = ["--data", str(data), "--host", host, "--port", str(port), "--program", sys.argv[0]]
    args += ["--tls-cert", str(cert)] if cert is not None else []
    return args + (["--tls-key", str(key)] if key is not None else [])


def _say(text: str) -> None:
    print(printable(text), file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pli serve")
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-cert", type=Path)
    parser.add_argument("--tls-key", type=Path)
    parser.add_argument("--program", type=Path, help="the `pli` this was started as")
    args = parser.parse_args(argv)
    from pli.server.main import serve  # noqa: PLC0415  (after the arguments: --help stays quick)

    try:
        serve(
            args.data,
            args.host,
            args.port,
            announce=_say,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            invoked_as=args.program,
        )
    except PliError as error:
        _say(f"error: {error.message}")
        if error.hint:
            _say(f"hint: {error.hint}")
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
