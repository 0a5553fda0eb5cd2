"""Typed views of database rows, shared by the store, the tracker, the notifier and the message builders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from slackbot.backends.base import TERMINAL_STATUSES, FineTuneSpec


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
    status: str
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    status_changed_at: datetime
    finished_at: datetime | None
    tracking: bool
    next_poll_at: datetime | None
    poll_failures: int
    submission_key: str | None = None  # the form submission (view id) it came from, if any

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

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
    project: str
    slug: str
    status: str
    created_at: datetime
    status_changed_at: datetime
    poll_failures: int


class OutboxRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    job_id: int
    dedupe_key: str
    kind: str
    channel_id: str
    payload: dict[str, Any]
    state: str
    attempts: int
    not_before: datetime
    sent_ts: str | None
    last_error: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> OutboxRecord:
        data = dict(row._mapping)
        for key in ("claimed_by", "claimed_until", "sent_at"):
            data.pop(key, None)
        return cls.model_validate(data)
