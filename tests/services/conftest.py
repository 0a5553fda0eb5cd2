"""The services run on a real store: the jobs layer's database fixtures (SQLite, and PostgreSQL when reachable)."""

from tests.jobs.conftest import db_url, engine, pg_url, sqlite_url, store

__all__ = ["db_url", "engine", "pg_url", "sqlite_url", "store"]
