"""Migration 0003 (outside text as TEXT, the slug unique among jobs not refused) on a database left at 0002 with
rows in every table: nothing is lost, ids go on where they were, and long outside text then fits."""

from __future__ import annotations

from typing import Any

from alembic import command
from sqlalchemy import Engine, text

from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.db import _alembic_config, make_engine, migrate, migration_status
from slackbot.jobs.store import JobStore
from tests.jobs.helpers import T0, op, spec

_JOB = (
    "INSERT INTO jobs (id, team_id, channel_id, requester_id, backend, project, slug, provider, base_model,"
    " dataset_id, dataset_name, spec, form_state, status, error_message, created_at, updated_at,"
    " status_changed_at, tracking, poll_failures)"
    " VALUES (:id, 'T1', 'C1', 'U1', 'openpipe', 'p1', :slug, 'openpipe', 'meta-llama/Meta-Llama-3.1-8B-Instruct',"
    " 'ds-1', 'Support tickets', :spec, :form, :status, :error, :at, :at, :at, :tracking, 0)"
)
_OUTBOX = (
    "INSERT INTO outbox (job_id, dedupe_key, kind, channel_id, payload, state, attempts, not_before, created_at)"
    " VALUES (:job, :key, :kind, 'C1', '{\"type\": \"post_card\"}', :state, 0, :at, :at)"
)


def _at_0002(url: str) -> Engine:
    engine = make_engine(url)
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    at = T0.isoformat()
    specs = {slug: spec(slug).model_dump_json() for slug in ("training", "refused", "gone")}
    with engine.begin() as conn:
        for job_id, slug, status, form, error in [
            (1, "training", "TRAINING", None, None),
            (2, "refused", "REJECTED", '{"slug": "refused"}', "Input validation failed"),
            (3, "gone", "DEPLOYED", None, None),
        ]:
            values = {"id": job_id, "slug": slug, "spec": specs[slug], "form": form, "status": status, "error": error}
            conn.execute(text(_JOB), values | {"at": at, "tracking": status == "TRAINING"})
        conn.execute(text("DELETE FROM jobs WHERE id = 3"))  # the highest id ever used is 3
        if conn.dialect.name == "postgresql":  # ids given explicitly do not move PostgreSQL's sequence
            conn.execute(text("SELECT setval('jobs_id_seq', 3)"))
        for job, key, kind, state in [
            (1, "card:post", "card", "sent"),
            (1, "reply:TRAINING", "reply", "pending"),
            (2, "rejected:1", "rejected", "sent"),
        ]:
            conn.execute(text(_OUTBOX), {"job": job, "key": key, "kind": kind, "state": state, "at": at})
        conn.execute(text("INSERT INTO channel_slots (channel_id, free_at) VALUES ('C1', :at)"), {"at": at})
    assert migration_status(engine)[0] == "0002"
    return engine


def _dump(engine: Engine) -> dict[str, list[Any]]:
    with engine.connect() as conn:
        return {
            table: [tuple(row) for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]  # noqa: S608  (fixed names)
            for table in ("jobs", "outbox", "channel_slots")
        }


def test_0003_keeps_every_row_and_lets_long_outside_text_in(db_url: str) -> None:
    engine = _at_0002(db_url)
    before = _dump(engine)
    assert [len(rows) for rows in before.values()] == [2, 3, 1]
    migrate(engine, to="0003")
    assert migration_status(engine)[0] == "0003"
    assert _dump(engine) == before  # every row of every table, value for value (the outbox was not cascaded)
    migrate(engine)  # and on to today's schema, which the store below writes
    store = JobStore(engine)
    # The refused job's slug is free; its row stays for its "Edit and retry" button.
    reused = store.create_job(
        team_id="T1",
        channel_id="C1",
        requester_id="U2",
        backend="openpipe",
        project="p1",
        spec=spec("refused"),
        now=T0,
        dataset_name="n" * 10_000,
    )
    assert reused.id == 4  # ids go on after the highest ever used, never reusing a deleted job's id
    assert store.get(reused.id) == reused and reused.dataset_name == "n" * 10_000
    refused = store.get(2)
    assert refused is not None and refused.lifecycle is Lifecycle.REJECTED and refused.form_state == {"slug": "refused"}
    # A status of any length from the backend is a transition like any other.
    odd = "S" * 500
    assert store.apply_transition(1, op("TRAINING"), (odd, Lifecycle.UNKNOWN), None, T0, None, lease_owner=None)
    job = store.get(1)
    assert job is not None and job.status == odd
    told = store.outbox_for_job(1)[-1]
    assert told.kind == "reply" and told.payload["to_status"] == odd
    engine.dispose()
