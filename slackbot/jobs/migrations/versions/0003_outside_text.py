"""Columns that hold outside text become TEXT; a REJECTED job keeps its row when its slug is used again.

Values chosen by OpenPipe or a user (slug, model id, base model, dataset id and name, status, and the outbox key
that carries a status) were VARCHAR(n): on PostgreSQL a longer one made the insert or transition fail every time.
The slug stays unique per workspace, but only among jobs that were not refused (a partial unique index), so a
refused job's "Edit and retry" button still finds its row after the slug was used again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_JOBS_TEXT = {
    "slug": (sa.String(128), False),
    "model_id": (sa.String(128), True),
    "base_model": (sa.String(256), False),
    "dataset_id": (sa.String(128), False),
    "dataset_name": (sa.String(256), True),
    "status": (sa.String(32), False),
}
_NOT_REJECTED = sa.text("status != 'REJECTED'")


def upgrade() -> None:
    # On SQLite, batch mode copies each table into a new one (SQLite cannot change a column's type in place);
    # `migrate` turns foreign keys off around it, or dropping the old jobs table would cascade to the outbox.
    sequences = _sqlite_sequences()
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint("uq_jobs_team_slug", type_="unique")
        for name, (old, nullable) in _JOBS_TEXT.items():
            batch.alter_column(name, type_=sa.Text(), existing_type=old, existing_nullable=nullable)
    op.create_index(
        "uq_jobs_team_slug",
        "jobs",
        ["team_id", "slug"],
        unique=True,
        sqlite_where=_NOT_REJECTED,
        postgresql_where=_NOT_REJECTED,
    )
    with op.batch_alter_table("outbox", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("dedupe_key", type_=sa.Text(), existing_type=sa.String(128), existing_nullable=False)
    _restore_sqlite_sequences(sequences)


def _sqlite_sequences() -> dict[str, int]:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return {}
    rows = bind.execute(sa.text("SELECT name, seq FROM sqlite_sequence WHERE name IN ('jobs', 'outbox')"))
    return {str(name): int(seq) for name, seq in rows}


def _restore_sqlite_sequences(sequences: dict[str, int]) -> None:
    """The copied tables would restart their ids after the highest id left, and ids of deleted jobs would come
    back: a job id appears in Slack buttons, so the sequence goes on where it was."""
    bind = op.get_bind()
    for name, seq in sequences.items():
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": name})
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"), {"name": name, "seq": seq}
        )


def downgrade() -> None:
    # Fails, as it should, if a value no longer fits or two jobs (one REJECTED) share a slug.
    sequences = _sqlite_sequences()
    with op.batch_alter_table("outbox", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("dedupe_key", type_=sa.String(128), existing_type=sa.Text(), existing_nullable=False)
    op.drop_index("uq_jobs_team_slug", "jobs")
    with op.batch_alter_table("jobs", table_kwargs={"sqlite_autoincrement": True}) as batch:
        for name, (old, nullable) in _JOBS_TEXT.items():
            batch.alter_column(name, type_=old, existing_type=sa.Text(), existing_nullable=nullable)
        batch.create_unique_constraint("uq_jobs_team_slug", ["team_id", "slug"])
    _restore_sqlite_sequences(sequences)
