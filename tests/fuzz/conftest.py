"""The integration suite's fixtures that the fuzzing tests share."""

from tests.integration.conftest import fresh_postgres

__all__ = ["fresh_postgres"]
