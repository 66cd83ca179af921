"""The schema the migrations build is the one the models describe, on each backend: a column,
an index or a constraint added to one and not the other fails here, not in production."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from pli.store import models
from pli.store.db import Database, migrate


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": False}
        )
        found: list[object] = compare_metadata(context, models.Base.metadata)
    # The table alembic keeps its own revision in is not a model.
    return [d for d in found if "alembic_version" not in repr(d)]


def test_the_migrations_build_the_models_schema(engine: Engine) -> None:
    assert _differences(engine) == []


def test_0007_marks_transfers_that_ended_before_it_as_purged(engine: Engine) -> None:
    from tests.unit.server.exchange import NOW  # noqa: PLC0415
    from tests.unit.server.test_links_service import _to  # noqa: PLC0415

    _to(engine, "0006", down=True)
    tables = sa.MetaData()
    tables.reflect(engine)
    users, transfers = tables.tables["users"], tables.tables["transfers"]
    expiry = NOW - timedelta(days=1)
    with engine.begin() as conn:
        conn.execute(
            users.insert().values(
                id=101, email="u@example.org", password_hash="x", is_admin=False, created_at=NOW
            )
        )
        for transfer_id, state in (
            ("a" * 32, "expired"),
            ("b" * 32, "revoked"),
            ("c" * 32, "sealed"),
        ):
            conn.execute(
                transfers.insert().values(
                    id=transfer_id,
                    sender_id=101,
                    kind="direct",
                    state=state,
                    created_at=NOW - timedelta(days=2),
                    expires_at=expiry if state == "expired" else NOW + timedelta(days=1),
                )
            )
    migrate(engine)
    with Database(engine).session() as session:
        purged = {t.id[0]: t.purged_at for t in session.scalars(sa.select(models.Transfer))}
    assert purged["a"] == expiry
    assert purged["b"] is not None
    assert purged["c"] is None
