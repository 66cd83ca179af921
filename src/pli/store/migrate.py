"""`python -m pli.store.migrate`: bring the database whose URL is read from standard input to
the newest migration, then exit. `pli serve` runs it in a process of its own, so that the
server it starts never keeps Alembic in memory (see `pli.store.db.migrate_apart`)."""

from __future__ import annotations

import sys

from pli.store.db import make_engine, migrate


def main() -> int:
    engine = make_engine(sys.stdin.read().strip())
    try:
        migrate(engine)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
