"""A database error, as the bot logs it (message and traceback), carries no value that was bound to the statement."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from slackbot.jobs.db import make_engine, migrate

_INSERT = (
    "INSERT INTO jobs (team_id, channel_id, requester_id, backend, project, slug, provider, base_model, dataset_id,"
    " spec, submission_key, status, lifecycle, created_at, updated_at, status_changed_at, tracking, poll_failures)"
    " VALUES ('T1', 'C1', :who, 'openpipe', 'p1', :slug, 'openpipe', 'm', 'ds-1', '{}', :key, 'TRAINING', 'running',"
    " '2026-07-01', '2026-07-01', '2026-07-01', true, 0)"
)


@pytest.mark.parametrize("violation", ["not-null", "unique"])
def test_database_error_log_line_has_no_parameter_values(
    db_url: str, violation: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine = make_engine(db_url)
    migrate(engine)
    secret = "opk_live_do_not_log_4f2a9c"
    log = logging.getLogger("slackbot.test")
    if violation == "unique":
        with engine.begin() as conn:
            conn.execute(text(_INSERT), {"who": "U1", "slug": "first", "key": secret})
    row = {"who": None if violation == "not-null" else "U1", "slug": f"slug-{secret}", "key": secret}
    with caplog.at_level(logging.ERROR), pytest.raises(IntegrityError):
        try:
            with engine.begin() as conn:
                conn.execute(text(_INSERT), row)
        except IntegrityError:
            log.exception("writing the job failed")
            raise
    [record] = caplog.records
    line = logging.Formatter("%(message)s").format(record)  # with the traceback and the driver's chained error
    assert "Traceback" in line and "IntegrityError" in line
    assert "parameters hidden" in line
    assert secret not in line
    engine.dispose()
