"""Throwaway PostgreSQL databases: for the test run, and for tests that need
committed data and real concurrency in a database of their own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

from openvisit.dbadmin import upgrade

# The server the tests use, by its maintenance database.
ADMIN_URL = os.environ.get(
    "OPENVISIT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def throwaway_database(
    admin_url: str, *, migrate: bool = True, prefix: str = "openvisit_test"
) -> Iterator[str]:
    """Create a database next to ``admin_url``'s (migrated, unless told not to), yield
    its URL, and drop it afterwards, ending any connection still open to it."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            url = admin_url.rsplit("/", 1)[0] + f"/{name}"
            if migrate:
                upgrade(url)
            yield url
        finally:
            with admin.connect() as conn:
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    finally:
        admin.dispose()
