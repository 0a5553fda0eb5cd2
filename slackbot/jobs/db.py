"""Engine construction and schema migrations (Alembic, driven from code so it works from a wheel)."""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
import time
import weakref
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext, make_url

from slackbot.retry import backoff

_MIGRATIONS = Path(__file__).parent / "migrations"
# Any stable 64-bit number works; derived from a name so it is recognisable in pg_locks.
_MIGRATION_LOCK_KEY = zlib.crc32(b"slackbot.jobs.migrate")
_READ_ONLY = "slackbot_read_only"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for a sqlite:/// file or a postgresql+psycopg:// URL, which never shows bound parameters.

    SQLite write transactions are serialised with BEGIN IMMEDIATE: a deferred transaction that reads and then
    writes can fail at once with SQLITE_BUSY in WAL mode (busy_timeout does not help there), and the claim
    queries are exactly read-then-write.
    """
    parsed = make_url(url)
    # SQL errors never carry the values bound to the statement: they are outside text (a user's form, OpenPipe's
    # answers) and may be secret, and SQLAlchemy puts them in the exception text that is logged.
    kwargs["hide_parameters"] = True
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
        _configure_sqlite(engine)
        _turns[engine] = WriterTurns()
        return engine
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    _hide_row_details(engine)
    return engine


def _hide_row_details(engine: Engine) -> None:
    """PostgreSQL's errors carry the failing row or key in a DETAIL line ("Failing row contains (…)"): values
    that `hide_parameters` leaves in both the SQLAlchemy error and the driver's error chained to it."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        for exc in (context.sqlalchemy_exception, context.original_exception):
            if exc is not None and exc.args and isinstance(exc.args[0], str) and "\nDETAIL:" in str(exc.args[0]):
                exc.args = (exc.args[0].split("\nDETAIL:", 1)[0], *exc.args[1:])


def _use_wal(dbapi_connection: Any, give_up_after: float = 10.0) -> None:
    """Switch the file to WAL (the file keeps it). While another connection is switching a new file at the same
    moment (replicas starting together), SQLite answers "database is locked" at once, without the busy timeout's
    wait: look again shortly, with jitter, until that one is done."""
    deadline = time.monotonic() + give_up_after
    rng = random.Random()
    for attempt in itertools.count(1):
        cursor = dbapi_connection.cursor()
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        finally:
            cursor.close()
        time.sleep(backoff(attempt, base=0.005, cap=0.1, rng=rng))


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how transactions start, instead of pysqlite's implicit BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=10000")
        _use_wal(dbapi_connection)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # No checkpoint inside a commit: it would land on whichever write crosses the threshold, a Slack-facing
        # one included. `Checkpoints.run_if_due` does it in the background instead; SQLite also checkpoints when
        # the last connection closes.
        cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A read-only transaction takes no write lock: in WAL mode it reads a snapshot and never waits behind
        # (or blocks) a writer, so Slack's 3 s paths that only read are not held up by the tracker's writes.
        read_only = conn.get_execution_options().get(_READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


class WriterTurns:
    """This process's SQLite writers take turns here before BEGIN IMMEDIATE, urgent ones (Slack is waiting on
    the answer) ahead of the others waiting.

    Without it, writers that find the database locked wait in SQLite's busy handler, which polls with sleeps
    growing to 100 ms: under a burst of submissions a writer could wait over a second behind writes that take a
    millisecond each. Other processes on the same file still wait in the busy handler (several replicas should
    use PostgreSQL). A thread already holding its turn goes on (a nested write is SQLite's to refuse).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._depth = 0
        self._urgent_waiting = 0

    @contextmanager
    def turn(self, urgent: bool = False) -> Iterator[None]:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
            else:
                self._urgent_waiting += urgent
                try:
                    self._cond.wait_for(lambda: self._owner is None and (urgent or not self._urgent_waiting))
                finally:
                    self._urgent_waiting -= urgent
                self._owner, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                    self._cond.notify_all()


_turns: weakref.WeakKeyDictionary[Engine, WriterTurns] = weakref.WeakKeyDictionary()


@contextmanager
def writing(engine: Engine, *, urgent: bool = False) -> Iterator[Connection]:
    """A write transaction (`engine.begin()`); on SQLite, after this process's writers ahead have finished
    (`WriterTurns`). `urgent`: Slack waits on this write, so it goes before writes that nobody waits on."""
    turns = _turns.get(engine)
    if turns is None:
        with engine.begin() as conn:
            yield conn
        return
    with turns.turn(urgent), engine.begin() as conn:
        yield conn


class Checkpoints:
    """Copies SQLite's write-ahead log into the database file (a PASSIVE checkpoint: it waits for no reader or
    writer), at most once per `every_seconds`, from a background thread (the scheduler's). Nothing on PostgreSQL."""

    def __init__(self, engine: Engine, every_seconds: float = 1.0) -> None:
        self.engine = engine
        self.every = every_seconds
        self._last = float("-inf")

    def run_if_due(self) -> bool:
        if self.engine.dialect.name != "sqlite" or time.monotonic() - self._last < self.every:
            return False
        self._last = time.monotonic()
        # Outside any transaction (a checkpoint cannot run inside one): the DB-API connection, in autocommit.
        raw = self.engine.raw_connection()
        try:
            raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            raw.close()
        return True


def db_now(conn: Connection) -> datetime:
    """The database's clock: what every lease and claim deadline is computed from and compared with.

    Replicas' own clocks may differ; the database's is the one they share. On PostgreSQL that is
    `clock_timestamp()` (the moment of the statement, not of the transaction's start); on SQLite every process
    runs on the one machine whose file it is, so the wall clock of this process is the database's clock.
    """
    if conn.dialect.name == "postgresql":
        moment: datetime = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
        return moment.astimezone(UTC)
    return datetime.now(UTC)


def reading(engine: Engine) -> Connection:
    """A connection for reads only (on SQLite: a deferred transaction, see `_configure_sqlite`)."""
    return engine.connect().execution_options(**{_READ_ONLY: True})


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def migrate(engine: Engine, to: str = "head", *, down: bool = False) -> None:
    """Bring the database to the newest revision (or to revision `to`; `down`: back down to it, for an operator
    undoing an upgrade). Safe when several replicas start at once."""
    config = _alembic_config()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # A migration that rebuilds a table (batch mode) drops the old one: with foreign keys on, that would
            # cascade-delete the outbox rows of every job. SQLite only accepts this pragma outside a transaction.
            _raw_pragma(conn, "PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if not sqlite:
                    # Held until this transaction ends; the second replica waits, then finds nothing left to do.
                    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
                config.attributes["connection"] = conn
                (command.downgrade if down else command.upgrade)(config, to)
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise RuntimeError("the migrated database has rows whose foreign keys point nowhere")
        finally:
            if sqlite:
                _raw_pragma(conn, "PRAGMA foreign_keys=ON")


def _raw_pragma(conn: Connection, statement: str) -> None:
    """Run a pragma on the DB-API connection itself: SQLAlchemy would open a transaction first."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None  # the connection is open
    cursor = dbapi.cursor()
    try:
        cursor.execute(statement)
    finally:
        cursor.close()


def migration_status(engine: Engine) -> tuple[str | None, str | None]:
    """(revision the database is at, newest revision shipped) — equal when no migration is pending."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    return current, head
