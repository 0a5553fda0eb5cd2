"""The crash tests run on both databases: the jobs layer's fixtures (a SQLite file, or a fresh PostgreSQL schema
per test that skips when the server is unreachable, except in CI where it fails)."""

from __future__ import annotations

from tests.jobs.conftest import db_url, pg_url, sqlite_url

__all__ = ["db_url", "pg_url", "sqlite_url"]
