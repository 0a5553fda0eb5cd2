from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.db import make_engine, migrate, migration_status
from slackbot.jobs.schema import metadata

HEAD = "0006"  # the newest migration shipped


def test_migrated_database_matches_schema(db_url: str) -> None:
    engine = make_engine(db_url)
    assert migration_status(engine) == (None, HEAD)
    migrate(engine)
    migrate(engine)  # a second run (restart) is a no-op
    assert migration_status(engine) == (HEAD, HEAD)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []
    assert set(inspect(engine).get_table_names()) == {"jobs", "outbox", "channel_slots", "job_feeds", "alembic_version"}
    engine.dispose()


def test_a_database_from_the_first_release_upgrades_with_its_jobs(db_url: str) -> None:
    """A bot upgraded in place: the database it left at 0001, with a job in it, is migrated at start."""
    from alembic import command

    from slackbot.jobs.db import _alembic_config
    from slackbot.jobs.store import JobStore
    from tests.jobs.helpers import T0, spec

    engine = make_engine(db_url)
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    assert migration_status(engine) == ("0001", HEAD)
    # The row the first release's store wrote for a job whose create was on its way (its status, SUBMITTING).
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (team_id, channel_id, requester_id, backend, project, slug, provider, base_model,"
                " dataset_id, spec, status, created_at, updated_at, status_changed_at, tracking, next_poll_at,"
                " poll_failures) VALUES ('T', 'C', 'U', 'openpipe', 'p', 'kept', 'openpipe', :base, 'ds-1', :spec,"
                " 'SUBMITTING', :at, :at, :at, :yes, :at, 0)"
            ),
            {"base": spec("kept").base_model, "spec": spec("kept").model_dump_json(), "at": T0, "yes": True},
        )
    migrate(engine)
    assert migration_status(engine) == (HEAD, HEAD)
    job = JobStore(engine).by_slug("T", "kept")
    assert job is not None and job.spec == spec("kept") and job.tracking and job.next_poll_at == T0
    assert (job.status, job.lifecycle) == (None, Lifecycle.SUBMITTING)
    engine.dispose()


def test_sqlite_file_is_created_with_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = f"{tmp_path}/nested/dir/bot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_naive_datetimes_are_refused(sqlite_url: str) -> None:
    from slackbot.jobs.store import JobStore
    from tests.jobs.helpers import spec

    engine = make_engine(sqlite_url)
    migrate(engine)
    with pytest.raises(Exception, match="naive datetime"):
        JobStore(engine).create_job(
            team_id="T",
            channel_id="C",
            requester_id="U",
            backend="fake",
            project="p",
            spec=spec("naive"),
            now=datetime(2026, 1, 1),  # naive on purpose
        )
    engine.dispose()


@pytest.mark.postgres
def test_concurrent_migrations_on_postgres(pg_url: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        engine = make_engine(pg_url)
        try:
            migrate(engine)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    engine = make_engine(pg_url)
    assert migration_status(engine) == (HEAD, HEAD)
    engine.dispose()


def test_sqlite_reads_do_not_wait_behind_a_writer(tmp_path: Path) -> None:
    """Slack's 3 s paths only read; on SQLite they must not queue behind the tracker's write transactions."""
    from slackbot.jobs.db import reading

    engine = make_engine(f"sqlite:///{tmp_path}/bot.db")
    migrate(engine)
    writing, read_done = threading.Event(), threading.Event()

    def writer() -> None:
        with engine.begin() as conn:  # BEGIN IMMEDIATE: holds the write lock until the reader is done
            conn.execute(text("DELETE FROM outbox"))
            writing.set()
            read_done.wait(20)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(5)
        with reading(engine) as conn:  # would wait out busy_timeout (10 s) and fail if it took a lock
            assert conn.execute(text("SELECT count(*) FROM jobs")).scalar() == 0
        assert thread.is_alive(), "the writer still holds its transaction: the read did not wait for it"
    finally:
        read_done.set()
        thread.join(10)
        engine.dispose()


def test_writer_turns_exclude_each_other_and_let_urgent_writers_go_first() -> None:
    import time

    from slackbot.jobs.db import WriterTurns

    turns = WriterTurns()
    order: list[str] = []
    inside = 0
    most = 0
    lock = threading.Lock()

    def write(name: str, urgent: bool) -> None:
        nonlocal inside, most
        with turns.turn(urgent):
            with lock:
                inside += 1
                most = max(most, inside)
                order.append(name)
            time.sleep(0.01)
            with lock:
                inside -= 1

    with turns.turn():  # hold the turn while everyone lines up
        with turns.turn():  # the holder may nest (SQLite, not this lock, decides about nested writes)
            pass
        waiting = [threading.Thread(target=write, args=(f"bg{i}", False)) for i in range(4)]
        for t in waiting:
            t.start()
        time.sleep(0.05)
        slack = threading.Thread(target=write, args=("slack", True))
        slack.start()
        time.sleep(0.05)
    for t in [*waiting, slack]:
        t.join(5)
    assert most == 1
    assert order[0] == "slack" and sorted(order[1:]) == [f"bg{i}" for i in range(4)]


def test_many_threads_writing_to_sqlite_all_succeed(tmp_path: Path) -> None:
    """Thirty writers at once on one SQLite file: none fails with "database is locked", none waits long."""
    from slackbot.jobs.db import writing

    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    migrate(engine)
    errors: list[Exception] = []

    def write(i: int) -> None:
        try:
            for j in range(20):
                with writing(engine, urgent=i % 3 == 0) as conn:
                    conn.execute(
                        text("INSERT INTO channel_slots VALUES (:c, '2026-01-01 00:00:00')"), {"c": f"C{i}-{j}"}
                    )
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM channel_slots")).scalar_one() == 600


def test_checkpoints_happen_in_the_background_not_inside_commits(tmp_path: Path) -> None:
    from slackbot.jobs.db import Checkpoints, writing

    engine = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 0
    for i in range(300):  # well past SQLite's default threshold of 1,000 pages if every insert had its own page
        with writing(engine) as conn:
            conn.execute(text("INSERT INTO channel_slots VALUES (:c, '2026-01-01 00:00:00')"), {"c": f"C{i}"})
    wal = tmp_path / "c.db-wal"
    assert wal.stat().st_size > 0
    checkpoints = Checkpoints(engine, every_seconds=3600)
    assert checkpoints.run_if_due() is True
    assert checkpoints.run_if_due() is False  # not due again for an hour
    raw = engine.raw_connection()
    try:
        busy, logged, copied = raw.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    finally:
        raw.close()
    assert busy == 0 and logged == copied, "everything in the log is in the database file"
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM channel_slots")).scalar_one() == 300
    engine.dispose()


def test_processes_opening_a_new_sqlite_file_together_all_get_wal(tmp_path: Path) -> None:
    """Replicas starting together on a new file: while one switches it to WAL, SQLite answers the others
    "database is locked" at once (no busy wait). Each connection still opens, in WAL."""
    failures: list[BaseException] = []
    modes: list[str] = []

    def open_it(url: str, barrier: threading.Barrier) -> None:
        engine = make_engine(url)
        barrier.wait()
        try:
            with engine.connect() as conn:
                modes.append(str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()))
        except Exception as exc:
            failures.append(exc)
        finally:
            engine.dispose()

    for i in range(40):  # each round a new file, four connections racing to switch it
        barrier = threading.Barrier(4)
        url = f"sqlite:///{tmp_path / f'race-{i}.db'}"
        threads = [threading.Thread(target=open_it, args=(url, barrier)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert failures == [] and modes == ["wal"] * 160
