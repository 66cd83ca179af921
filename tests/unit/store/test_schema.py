"""The schema the migrations build is the one the models describe, on each backend: a column,
an index or a constraint added to one and not the other fails here, not in production."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

from pli.store import models


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
