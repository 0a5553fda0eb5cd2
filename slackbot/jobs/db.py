"""Engine construction and schema migrations (Alembic, driven from code so it works from a wheel)."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any stable 64-bit number works; derived from a name so it is recognisable in pg_locks.
_MIGRATION_LOCK_KEY = zlib.crc32(b"slackbot.jobs.migrate")
_READ_ONLY = "slackbot_read_only"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a sqlite:/// file or a postgresql+psycopg:// URL.

    SQLite write transactions are serialised with BEGIN IMMEDIATE: a deferred transaction that reads and then
    writes can fail at once with SQLITE_BUSY in WAL mode (busy_timeout does not help there), and the claim
    queries are exactly read-then-write.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start, instead of pysqlite's implicit BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read-only transaction takes no write lock: in WAL mode it reads a snapshot and never waits behind
        # (or blocks) a writer, so Slack's 3 s paths that only read are not held up by the tracker's writes.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def reading(engine: Engine) -> Connection:
    """A connection for reads only (on SQLite: a deferred transaction, see `_configure_sqlite`)."""
    return engine.connect().execution_options(**{_READ_ONLY: True})


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the database to the newest revision. Safe when several replicas start at once."""
    config = _alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Held until this transaction ends; the second replica waits, then finds nothing left to do.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def migration_status(engine: Engine) -> tuple[str | None, str | None]:
    """(revision the database is at, newest revision shipped) — equal when no migration is pending."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head
