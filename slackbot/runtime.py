"""Wiring: everything the bot runs, built from `Settings`, started and stopped as one.

Dependencies are built here and passed down (`create_app(runtime)`); nothing below reads settings or
module globals. Tests build a Runtime pointed at the local Slack and OpenPipe stand-ins.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from sqlalchemy import Engine, text

from slackbot.backends.base import Backend
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.catalog import Catalog
from slackbot.jobs.db import Checkpoints, make_engine, migrate, reading
from slackbot.jobs.notifier import Notifier, NotifierConfig
from slackbot.jobs.scheduler import JobScheduler, guarded
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitService
from slackbot.jobs.tracker import Tracker, TrackerConfig
from slackbot.permissions import Permissions, UsergroupDirectory
from slackbot.settings import Settings

log = logging.getLogger(__name__)


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_slack_client(settings: Settings) -> WebClient:
    """One WebClient for the whole process: retries dropped connections and (for listeners) 429s."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=1),
        ],
    )


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    store: JobStore
    backend: Backend
    catalog: Catalog
    slack: WebClient
    notifier: Notifier
    tracker: Tracker
    submitter: SubmitService
    scheduler: JobScheduler
    permissions: Permissions
    clock: Callable[[], datetime]
    owner: str
    # Backend look-ups made while Slack waits (each bounded by a budget inside the 3 s).
    lookups: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=16, thread_name_prefix="lookup"), repr=False
    )
    # Slow work that follows an ack (starting a job, looking a model up): off Bolt's listener threads, so a slow
    # OpenPipe can never hold up the acks of other users' requests.
    after_ack: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=8, thread_name_prefix="after-ack"), repr=False
    )
    _started: bool = field(default=False, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        backend: Backend | None = None,
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
    ) -> Runtime:
        settings.require("SLACK_BOT_TOKEN", "OPENPIPE_API_KEY")
        owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        engine = make_engine(settings.database_url)
        migrate(engine)
        store = JobStore(engine)
        if backend is None:
            assert settings.openpipe_api_key is not None
            backend = OpenPipeBackend(
                settings.openpipe_api_key,
                settings.openpipe_base_url,
                timeout=settings.openpipe_timeout_seconds,
            )
        slack = make_slack_client(settings)
        notifier = Notifier(
            store,
            slack,
            owner,
            clock,
            NotifierConfig(
                broadcast_failures=settings.broadcast_failures, openpipe_api_base=settings.openpipe_base_url
            ),
        )
        interval = settings.poll_interval_seconds
        tracker = Tracker(
            store,
            {backend.project: backend},
            owner,
            clock,
            TrackerConfig(
                interval_seconds=interval,
                max_interval_seconds=interval * 4,
                max_age=timedelta(hours=settings.max_job_age_hours),
                lease_seconds=max(60.0, interval * 4),
            ),
        )
        submitter = SubmitService(
            store,
            backend,
            lambda job_id: _discard(notifier.deliver_job(job_id)),
            clock,
            poll_interval_seconds=interval,
            unknown_outcome_check_seconds=max(interval, 10.0),
        )
        checkpoints = Checkpoints(engine)
        scheduler = JobScheduler(
            guarded(("tracker", tracker.poll_once)),
            interval,
            deliver=lambda: _deliver_then_checkpoint(notifier, checkpoints),
            deliver_interval_seconds=min(0.25, interval),
        )
        permissions = Permissions(
            channels=settings.allowed_channels,
            users=settings.allowed_users,
            usergroups=settings.allowed_usergroups,
            group_members=UsergroupDirectory(slack) if settings.allowed_usergroups else None,
        )
        return cls(
            settings=settings,
            engine=engine,
            store=store,
            backend=backend,
            catalog=Catalog(backend),
            slack=slack,
            notifier=notifier,
            tracker=tracker,
            submitter=submitter,
            scheduler=scheduler,
            permissions=permissions,
            clock=clock,
            owner=owner,
        )

    def start(self) -> None:
        if not self._started:
            self.scheduler.start()
            self.catalog.warm()
            self._started = True
            log.info(
                "tracker started",
                extra={"owner": self.owner, "interval": self.settings.poll_interval_seconds},
            )

    def stop(self) -> None:
        """Finish the submissions and the tick in progress, then release everything (SIGTERM path)."""
        self.after_ack.shutdown(wait=True)
        self.lookups.shutdown(wait=False, cancel_futures=True)
        if self._started:
            self.scheduler.shutdown(wait=True)
            self._started = False
        self.catalog.close()
        self.backend.close()
        self.engine.dispose()
        log.info("stopped", extra={"owner": self.owner})

    def health(self) -> dict[str, object]:
        db_ok = True
        try:
            # A read-only transaction (on SQLite no write lock: it never waits behind a writer) that reads a
            # table, so the database file itself is read, not only a pooled connection reused.
            with reading(self.engine) as conn:
                conn.execute(text("SELECT version_num FROM alembic_version"))
        except Exception:
            db_ok = False
        scheduler_ok = self.scheduler.healthy() if self._started else False
        return {"ok": db_ok and scheduler_ok, "database": db_ok, "scheduler": scheduler_ok}


def _discard(_: object) -> None:
    return None


def _deliver_then_checkpoint(notifier: Notifier, checkpoints: Checkpoints) -> float | None:
    """The notifier's run, then (at most once a second) SQLite's checkpoint, both off Slack's paths."""
    wake_in = notifier.deliver_due().wake_in
    try:
        checkpoints.run_if_due()
    except Exception:
        log.exception("checkpoint failed; retried on a later run")
    return wake_in
