"""Fixtures of the hostile tests. The trial-database ones come from ``tests/store``: a real SQLite
file, and a real PostgreSQL server when ``RECIST_TEST_POSTGRES_URL`` is set."""

from tests.store.conftest import _fast_scrypt, db_url, pg_url  # noqa: F401 - fixtures
