"""Typed views of database rows, shared by the store, the tracker, the notifier and the message builders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from slackbot.backends.base import FineTuneSpec, JobDetails
from slackbot.backends.registry import declaration
from slackbot.domain.events import OutboxEvent, OutboxKind, parse_event
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.schema import OutboxState


def job_key(backend: str, slug: str, model_id: str | None) -> str:
    """What the job's service follows it by: the id its create answered when its backend follows jobs by id
    (Together's job id) and that is known; else the name the bot sent (OpenPipe's slug, Together's suffix)."""
    found = declaration(backend)
    return model_id if model_id and found is not None and found.follows_by_id else slug


class JobRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    team_id: str
    channel_id: str
    thread_ts: str | None
    card_channel_id: str | None
    card_ts: str | None
    requester_id: str
    backend: str
    project: str
    slug: str
    model_id: str | None
    provider: str
    base_model: str
    dataset_id: str
    dataset_name: str | None
    dataset_entries: int | None
    spec: FineTuneSpec
    form_state: dict[str, Any] | None
    status: str | None  # the service's own string; None while it has told none (submitting, refused)
    lifecycle: Lifecycle
    error_message: str | None
    details: JobDetails | None = None  # what the service last told beyond the status (None: nothing yet)
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    finished_at: datetime | None
    tracking: bool
    next_poll_at: datetime | None
    poll_failures: int
    submission_key: str | None = None  # the form submission (view id) it came from, if any

    @field_validator("lifecycle", mode="before")
    @classmethod
    def _known_lifecycle(cls, value: object) -> object:
        # A value written by a newer version of the bot is read as `unknown`, not a row that cannot be loaded.
        return Lifecycle.parse(value) if isinstance(value, str) else value

    @property
    def is_terminal(self) -> bool:
        return self.lifecycle.is_terminal

    @property
    def key(self) -> str:
        """What the job's service follows it by (see `job_key`)."""
        return job_key(self.backend, self.slug, self.model_id)

    @classmethod
    def from_row(cls, row: Any) -> JobRecord:
        data = dict(row._mapping)
        for key in ("lease_owner", "lease_until"):
            data.pop(key, None)
        return cls.model_validate(data)


@dataclass(frozen=True, slots=True)
class DueJob:
    """The columns the tracker reads of a job it claimed: no spec or form to decode (a sweep of 10,000 jobs
    spent half its time decoding those into `JobRecord`s it never used)."""

    id: int
    backend: str
    project: str
    slug: str
    status: str | None
    lifecycle: Lifecycle
    created_at: datetime
    status_changed_at: datetime
    poll_failures: int
    model_id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "lifecycle", Lifecycle.parse(self.lifecycle))

    @property
    def key(self) -> str:
        """What the job's service follows it by (see `job_key`): what the tracker asks for and matches by."""
        return job_key(self.backend, self.slug, self.model_id)


class OutboxRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    job_id: int
    dedupe_key: str
    # A kind this version does not know (written by a newer one) still loads: its row is then refused, by name.
    kind: Annotated[OutboxKind | str, Field(union_mode="left_to_right")]
    channel_id: str
    payload: dict[str, Any]
    state: OutboxState
    attempts: int
    not_before: datetime
    sent_ts: str | None
    last_error: str | None
    created_at: datetime

    @property
    def event(self) -> OutboxEvent:
        """The payload as its typed event; `EventError` (saying what is wrong) if it is none."""
        return parse_event(self.payload)

    @classmethod
    def from_row(cls, row: Any) -> OutboxRecord:
        data = dict(row._mapping)
        for key in ("claimed_by", "claimed_until", "sent_at"):
            data.pop(key, None)
        return cls.model_validate(data)
