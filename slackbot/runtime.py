"""Wiring: everything the bot runs, built from `Settings`, started and stopped as one.

Dependencies are built here and passed down (`create_app(runtime)`); nothing below reads settings or
module globals. Tests build a Runtime pointed at the local Slack and OpenPipe stand-ins.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from sqlalchemy import Engine, text

from slackbot.backends.base import Backend
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.catalog import Catalog
from slackbot.jobs.db import Checkpoints, make_engine, migrate, reading
from slackbot.jobs.notifier import Notifier, NotifierConfig
from slackbot.jobs.retention import Retention, RetentionConfig
from slackbot.jobs.scheduler import JobScheduler, guarded
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitService
from slackbot.jobs.tracker import Tracker, TrackerConfig
from slackbot.permissions import Permissions, UsergroupDirectory
from slackbot.settings import Settings, redact_url
from slackbot.text import remember_secrets

log = logging.getLogger(__name__)


# Work queued after acks (job starts) at most: past that, a submission is refused in the form (see submission.py).
AFTER_ACK_WORKERS = 8
AFTER_ACK_CAPACITY = 100


def utcnow() -> datetime:
    return datetime.now(UTC)


def make_slack_client(settings: Settings) -> WebClient:
    """One WebClient for the whole process: retries dropped connections and (for listeners) 429s."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=settings.slack_timeout_seconds,
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
        default_factory=lambda: ThreadPoolExecutor(max_workers=AFTER_ACK_WORKERS, thread_name_prefix="after-ack"),
        repr=False,
    )
    # Bounds what waits in `after_ack` (its own queue has no bound): a slot is taken before the ack, given back when
    # the work is done. A burst of submissions behind a stalled OpenPipe gets a clear "busy" instead of a queue
    # that grows without end and starts jobs an hour late.
    after_ack_slots: threading.BoundedSemaphore = field(
        default_factory=lambda: threading.BoundedSemaphore(AFTER_ACK_CAPACITY), repr=False
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
        # Every Slack surface redacts these verbatim, even where no token pattern would catch them.
        remember_secrets(*(v.get_secret_value() for v in vars(settings).values() if isinstance(v, SecretStr)))
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
                broadcast_failures=settings.broadcast_failures,
                # The card shows this URL in Slack: never the credentials it may carry.
                openpipe_api_base=redact_url(settings.openpipe_base_url),
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
            owner=f"{owner[:56]}/create",  # its own lease owner (the column holds 64): never mistaken for the tracker
        )
        checkpoints = Checkpoints(engine)
        scheduler = JobScheduler(
            guarded(("tracker", tracker.poll_once)),
            interval,
            deliver=lambda: _deliver_then_checkpoint(notifier, checkpoints),
            deliver_interval_seconds=min(0.25, interval),
            maintenance=Retention(engine, clock, RetentionConfig(days=settings.retention_days)).prune_once,
        )
        directory = None
        if settings.allowed_usergroups:
            # Its own client, which does not sleep on a 429: the refresh ends and Retry-After pauses the group.
            # The bot's clock (not the monotonic one) so that tests can move its TTL and pauses.
            directory = UsergroupDirectory(
                WebClient(
                    token=slack.token,
                    base_url=slack.base_url,
                    timeout=5,
                    retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1)],
                ),
                settings.allowed_usergroups,
                now=lambda: clock().timestamp(),
            )
        permissions = Permissions(
            channels=settings.allowed_channels,
            users=settings.allowed_users,
            usergroups=settings.allowed_usergroups,
            group_members=directory,
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

    def reserve_after_ack(self) -> bool:
        """Take a slot on the after-ack pool for work to submit later (`run_after_ack`); False if it is full.
        Taken before the ack, so a full pool can still be told to the user in Slack's answer."""
        return self.after_ack_slots.acquire(blocking=False)

    def unreserve_after_ack(self) -> None:
        """Give back a slot taken with `reserve_after_ack` that will not be used."""
        self.after_ack_slots.release()

    def run_after_ack(self, fn: Callable[..., object], *args: object) -> None:
        """Run `fn(*args)` on the after-ack pool, in a slot reserved before; the slot is given back when it is done."""

        def run() -> None:
            try:
                fn(*args)
            finally:
                self.after_ack_slots.release()

        try:
            self.after_ack.submit(run)
        except BaseException:
            self.after_ack_slots.release()
            raise

    def try_after_ack(self, fn: Callable[..., object], *args: object) -> bool:
        """`fn(*args)` on the after-ack pool if it has room; False (nothing queued) when it is full."""
        if not self.reserve_after_ack():
            return False
        self.run_after_ack(fn, *args)
        return True

    def start(self) -> None:
        if not self._started:
            self.scheduler.start()
            self.catalog.warm()
            self.permissions.warm()
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
        self.permissions.close()
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
