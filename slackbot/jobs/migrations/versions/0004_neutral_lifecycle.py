"""Jobs gain a backend-neutral `lifecycle`; `status` keeps only the service's own string; outbox payloads become
the typed events of slackbot.domain.events.

Every existing job was made by the OpenPipe backend, so its stored status is read with OpenPipe's statuses as they
were when this migration was written (a frozen copy: a later change to the backend's table must not change what
this migration did). The bot's own markers leave `status` for `lifecycle`: SUBMITTING → submitting, REJECTED →
rejected, DELETED → gone, each with no service status (NULL). The slug's partial unique index now skips rejected
jobs by lifecycle. Transition and adopted payloads gain their lifecycles (a transition's "from"/"to" become
from_status/to_status); other payloads keep their shape. No row is dropped, sent or not.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_OPENPIPE = {
    "PENDING": "queued",
    "QUEUED": "queued",
    "PROVISIONING": "running",
    "TRAINING": "running",
    "DEPLOYED": "succeeded",
    "ERROR": "failed",
    "PENDING_DEPRECATION": "succeeded",
    "DEPRECATED": "gone",
}
_BOT = {"SUBMITTING": "submitting", "REJECTED": "rejected", "DELETED": "gone"}
_OLD_INDEX_WHERE = sa.text("status != 'REJECTED'")
_NEW_INDEX_WHERE = sa.text("lifecycle != 'rejected'")

_jobs = sa.table("jobs", sa.column("id", sa.Integer), sa.column("status", sa.Text), sa.column("lifecycle", sa.String))
_outbox = sa.table(
    "outbox",
    sa.column("id", sa.Integer),
    sa.column("payload", sa.JSON),
)


def lifecycle_of(status: str | None) -> str:
    """The lifecycle an old stored status meant (a status OpenPipe added later is `unknown`, still followed)."""
    if status is None:
        return "unknown"
    return _BOT.get(status) or _OPENPIPE.get(status) or "unknown"


def upgrade_payload(payload: Any) -> Any:
    """An old outbox payload in the shape of today's events (others unchanged)."""
    if not isinstance(payload, dict):
        return payload
    kind = payload.get("type")
    if kind == "transition" and "to_lifecycle" not in payload:
        old, new = payload.get("from"), payload.get("to")
        return {
            "type": "transition",
            "from_status": None if old in _BOT else old,
            "to_status": None if new in _BOT else new,
            "from_lifecycle": lifecycle_of(old),
            "to_lifecycle": lifecycle_of(new),
            "at": payload.get("at"),
            "error_message": payload.get("error_message"),
        }
    if kind == "adopted" and "lifecycle" not in payload:
        status = payload.get("status")
        return {"type": "adopted", "status": status, "lifecycle": lifecycle_of(status)}
    return payload


def downgrade_payload(payload: Any) -> Any:
    if not isinstance(payload, dict):
        return payload
    kind = payload.get("type")
    if kind == "transition" and "to_lifecycle" in payload:
        new = payload.get("to_status")
        return {
            "type": "transition",
            "from": payload.get("from_status"),
            "to": new if new is not None else "DELETED",  # a model that vanished
            "at": payload.get("at"),
            "error_message": payload.get("error_message"),
        }
    if kind == "adopted" and "lifecycle" in payload:
        return {"type": "adopted", "status": payload.get("status")}
    return payload


def upgrade() -> None:
    sequences = _sqlite_sequences()
    op.drop_index("uq_jobs_team_slug", "jobs")
    op.add_column("jobs", sa.Column("lifecycle", sa.String(16)))
    every = {**_OPENPIPE, **_BOT}
    op.execute(_jobs.update().values(lifecycle=sa.case(every, value=_jobs.c.status, else_="unknown")))
    # On SQLite, batch mode copies the table (see 0003; `migrate` turns foreign keys off around it).
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("lifecycle", existing_type=sa.String(16), nullable=False)
        batch.alter_column("status", existing_type=sa.Text(), nullable=True)
    op.execute(_jobs.update().where(_jobs.c.status.in_(list(_BOT))).values(status=None))
    op.create_index(
        "uq_jobs_team_slug",
        "jobs",
        ["team_id", "slug"],
        unique=True,
        sqlite_where=_NEW_INDEX_WHERE,
        postgresql_where=_NEW_INDEX_WHERE,
    )
    _rewrite_payloads(upgrade_payload)
    _restore_sqlite_sequences(sequences)


def downgrade() -> None:
    sequences = _sqlite_sequences()
    _rewrite_payloads(downgrade_payload)
    op.drop_index("uq_jobs_team_slug", "jobs")
    back = {"submitting": "SUBMITTING", "rejected": "REJECTED", "gone": "DELETED"}
    # A model that vanished kept its last status; the old schema said DELETED instead (DEPRECATED stays itself).
    vanished = sa.and_(_jobs.c.lifecycle == "gone", sa.or_(_jobs.c.status.is_(None), _jobs.c.status != "DEPRECATED"))
    op.execute(_jobs.update().where(vanished).values(status="DELETED"))
    op.execute(
        _jobs.update()
        .where(_jobs.c.status.is_(None))
        .values(status=sa.case(back, value=_jobs.c.lifecycle, else_="UNKNOWN"))
    )
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("status", existing_type=sa.Text(), nullable=False)
        batch.drop_column("lifecycle")
    op.create_index(
        "uq_jobs_team_slug",
        "jobs",
        ["team_id", "slug"],
        unique=True,
        sqlite_where=_OLD_INDEX_WHERE,
        postgresql_where=_OLD_INDEX_WHERE,
    )
    _restore_sqlite_sequences(sequences)


def _rewrite_payloads(convert: Any) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_outbox.c.id, _outbox.c.payload)).all()
    for row_id, payload in rows:
        new = convert(payload)
        if new is not payload:
            bind.execute(_outbox.update().where(_outbox.c.id == row_id).values(payload=new))


def _sqlite_sequences() -> dict[str, int]:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return {}
    rows = bind.execute(sa.text("SELECT name, seq FROM sqlite_sequence WHERE name IN ('jobs', 'outbox')"))
    return {str(name): int(seq) for name, seq in rows}


def _restore_sqlite_sequences(sequences: dict[str, int]) -> None:
    """Ids go on where they were after the table copy (a job id appears in Slack buttons; see 0003)."""
    bind = op.get_bind()
    for name, seq in sequences.items():
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": name})
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"), {"name": name, "seq": seq}
        )
