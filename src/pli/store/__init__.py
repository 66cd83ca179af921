"""Metadata (SQLAlchemy models, Alembic migrations) and blob stores."""
