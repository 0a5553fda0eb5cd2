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
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from sqlalchemy import Engine, text

from slackbot.backends.base import Backend
from slackbot.backends.declaration import BackendConfig, BackendDeclaration, Capabilities
from slackbot.backends.registry import capabilities, declaration, declared
from slackbot.catalog import Catalog
from slackbot.delivery.notifier import Notifier, NotifierConfig
from slackbot.jobs.db import Checkpoints, make_engine, migrate, reading
from slackbot.jobs.feed import FeedConfig, FeedFollower
from slackbot.jobs.records import JobRecord
from slackbot.jobs.retention import Retention, RetentionConfig
from slackbot.jobs.scheduler import JobScheduler, guarded
from slackbot.jobs.store import JobStore
from slackbot.jobs.submit import SubmitService
from slackbot.jobs.tracker import Tracker, TrackerConfig
from slackbot.permissions import Permissions, UsergroupDirectory
from slackbot.settings import Settings, SettingsError, backend_problems, describe, redact_url
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
    # Every backend that is on (its key is set), by name, in the registry's order: the first is the default.
    backends: dict[str, Backend]
    catalogs: dict[str, Catalog]
    slack: WebClient
    notifier: Notifier
    tracker: Tracker
    feed: FeedFollower
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
    # What listeners started that must end with the bot (e.g. the Home tab's refresher), called by `stop`.
    on_stop: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _started: bool = field(default=False, repr=False)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        backend: Backend | None = None,
        backends: Iterable[Backend] = (),
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
    ) -> Runtime:
        """`backend` replaces the default backend built from settings; `backends` are added beside those (tests
        run backends that have no settings of their own)."""
        settings.require("SLACK_BOT_TOKEN")
        added = list(backends)
        if not added:
            problems = backend_problems(settings, [d.settings.api_key for d in declared()])
            if problems:
                raise SettingsError(describe(problems))
        # Every Slack surface redacts these verbatim, even where no token pattern would catch them.
        remember_secrets(*(v.get_secret_value() for v in vars(settings).values() if isinstance(v, SecretStr)))
        owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        engine = make_engine(settings.database_url)
        migrate(engine)
        store = JobStore(engine)
        built = {d.name: d.build(config) for d in declared() if (config := backend_config(settings, d))}
        if backend is not None:
            built = {backend.name: backend, **{k: v for k, v in built.items() if k != backend.name}}
        built.update({b.name: b for b in added})
        on = list(built.values())
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
                api_bases={
                    d.name: redact_url(d.settings.api_base(c.base_url))
                    for d in declared()
                    if (c := backend_config(settings, d))
                },
            ),
        )
        interval = settings.poll_interval_seconds
        tracker = Tracker(
            store,
            on,
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
            on,
            lambda job_id: _discard(notifier.deliver_job(job_id)),
            clock,
            poll_interval_seconds=interval,
            unknown_outcome_check_seconds=max(interval, 10.0),
            owner=f"{owner[:56]}/create",  # its own lease owner (the column holds 64): never mistaken for the tracker
        )
        feed = FeedFollower(
            engine,
            on,
            owner,
            clock,
            FeedConfig(
                events_interval_seconds=interval,
                chart_interval_seconds=settings.chart_interval_seconds,
                lease_seconds=max(60.0, interval * 4),
            ),
        )
        checkpoints = Checkpoints(engine)
        scheduler = JobScheduler(
            guarded(("tracker", tracker.poll_once)),
            interval,
            deliver=lambda: _deliver_then_checkpoint(notifier, checkpoints),
            deliver_interval_seconds=min(0.25, interval),
            maintenance=Retention(engine, clock, RetentionConfig(days=settings.retention_days)).prune_once,
            feed=feed.poll_once,
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
            backends=built,
            catalogs={name: Catalog(b) for name, b in built.items()},
            slack=slack,
            notifier=notifier,
            tracker=tracker,
            feed=feed,
            submitter=submitter,
            scheduler=scheduler,
            permissions=permissions,
            clock=clock,
            owner=owner,
        )

    @property
    def backend(self) -> Backend:
        """The default backend: the first one on (with one backend on, the only one)."""
        return next(iter(self.backends.values()))

    @property
    def catalog(self) -> Catalog:
        """The default backend's catalog."""
        return self.catalogs[self.backend.name]

    def catalog_for(self, backend: str) -> Catalog:
        return self.catalogs.get(backend) or self.catalog

    def capabilities(self, job: JobRecord | str) -> Capabilities:
        """What can be done with this job (or backend) here: what its backend declares, none if it is not on.
        The Cancel, Delete and Try-it buttons ask this before showing."""
        name = job if isinstance(job, str) else job.backend
        return capabilities(name) if name in self.backends else Capabilities()

    def offers(self) -> list[tuple[str, Capabilities]]:
        """(display name, capabilities) of each backend on, for the help."""
        shown = [declaration(name) for name in self.backends]
        return [(d.display_name, d.capabilities) for d in shown if d is not None]

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
            for catalog in self.catalogs.values():
                catalog.warm()
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
        for stop in self.on_stop:
            stop()
        if self._started:
            self.scheduler.shutdown(wait=True)
            self._started = False
        for catalog in self.catalogs.values():
            catalog.close()
        self.permissions.close()
        for backend in self.backends.values():
            backend.close()
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


def backend_config(settings: Settings, declaration: BackendDeclaration) -> BackendConfig | None:
    """A backend's settings, or None when it is off (its key is not set)."""
    names = declaration.settings
    key = getattr(settings, names.api_key.lower(), None)
    if not isinstance(key, SecretStr) or not key.get_secret_value().strip():
        return None
    base_url = getattr(settings, names.base_url.lower())
    timeout = getattr(settings, names.timeout_seconds.lower())
    return BackendConfig(api_key=key, base_url=str(base_url), timeout_seconds=float(timeout))


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
