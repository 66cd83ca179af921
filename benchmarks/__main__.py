"""`python -m benchmarks`: run the whole suite, print one table, optionally write it down."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import tempfile
from pathlib import Path

from benchmarks.report import LEGEND, table
from benchmarks.run import FULL, PARTS, SMALL, log_to_stderr, run_all


def _out_of_time(signum: int, frame: object) -> None:
    # SystemExit, not an Exception: a part that fails is reported and the next one runs, but
    # past the deadline everything stops (servers included, by their context managers).
    raise SystemExit("the benchmarks ran past their deadline")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--small", action="store_true", help="small sizes: a quick check")
    parser.add_argument("--size-mib", type=int, help="size of the large-file parts")
    parser.add_argument("--output", type=Path, help="write the results (Markdown) here")
    parser.add_argument("--deadline-min", type=float, default=30, help="give up after this")
    parser.add_argument(
        "--part",
        action="append",
        choices=[name for name, _ in PARTS],
        help="run only this part (repeatable); every part by default",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(int(args.deadline_min * 60))
    plan = SMALL if args.small else FULL
    if args.size_mib:
        plan = dataclasses.replace(plan, size_mib=args.size_mib)
    with tempfile.TemporaryDirectory(prefix="pli-bench-") as tmp:
        results = run_all(plan, Path(tmp), log=log_to_stderr, parts=args.part)
    print(table(results.rows))
    print()
    print(LEGEND)
    if args.output:
        args.output.write_text(results.markdown() + "\n")
        log_to_stderr(f"written to {args.output}")
    return 1 if results.failed else 0


if __name__ == "__main__":
    sys.exit(main())
