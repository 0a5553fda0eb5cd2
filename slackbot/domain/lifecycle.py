"""Where a fine-tune is in its life, in words every backend maps its own statuses to.

A backend keeps its own status string (shown as the service says it, e.g. OpenPipe's "PROVISIONING"); the
lifecycle decides everything the bot does with it: whether to keep following, the emoji, whether to mention the
requester. Two values are the bot's own, around the service's: `submitting` (our row is written, the service
has not confirmed the create) and `rejected` (the service refused the create, or it never appeared). They live
in the same enum because a job is in exactly one of them at a time and one indexed column decides the tracker's
path, the slug's uniqueness and the card; a backend never maps a status to them (a test holds each backend to it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Lifecycle(StrEnum):
    SUBMITTING = "submitting"  # bot-side: create sent (or about to be), not confirmed
    REJECTED = "rejected"  # bot-side: the create was refused or never landed; the slug is free again
    QUEUED = "queued"
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLING = "cancelling"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    GONE = "gone"  # the model no longer exists (deleted, deprecated away): nothing to follow
    UNKNOWN = "unknown"  # a status the backend's table does not know: followed as still going

    @property
    def is_terminal(self) -> bool:
        """The service will not change it any more: stop following, mention the requester."""
        return self in _TERMINAL

    @property
    def is_bot_side(self) -> bool:
        return self in (Lifecycle.SUBMITTING, Lifecycle.REJECTED)

    @classmethod
    def parse(cls, value: str) -> Lifecycle:
        """A stored value; one this version does not know (written by a newer one) is `unknown`, never a crash."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


_TERMINAL = frozenset({Lifecycle.SUCCEEDED, Lifecycle.FAILED, Lifecycle.CANCELLED, Lifecycle.GONE})


@dataclass(frozen=True, slots=True)
class StatusWords:
    """One service status: its lifecycle, the card's label and the thread reply's words when a job enters it."""

    lifecycle: Lifecycle
    label: str
    news: str


@dataclass(frozen=True)
class StatusTable:
    """A backend's statuses. Any string not in it is `unknown` and shown as the service wrote it."""

    statuses: Mapping[str, StatusWords]

    def lifecycle(self, status: str) -> Lifecycle:
        words = self.statuses.get(status)
        return Lifecycle.UNKNOWN if words is None else words.lifecycle

    def words(self, status: str) -> StatusWords | None:
        return self.statuses.get(status)


# Words for states that have no service status of their own (the bot's, and a model that vanished).
BOT_WORDS: Mapping[Lifecycle, StatusWords] = {
    Lifecycle.SUBMITTING: StatusWords(Lifecycle.SUBMITTING, "Submitting", "Submitting"),
    Lifecycle.REJECTED: StatusWords(Lifecycle.REJECTED, "Rejected by the service", "Rejected by the service"),
    Lifecycle.GONE: StatusWords(
        Lifecycle.GONE, "Deleted at the service", "Deleted at the service — no longer followed"
    ),
}
