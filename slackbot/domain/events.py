"""What the bot has to tell Slack about a job: the outbox's events, one typed model per kind of message.

The store writes one in the same transaction as the change it tells; the notifier parses it back and renders the
words at delivery time from it and the job's current row. Stored as JSON (`model_dump(mode="json")`), told apart
by `type`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

import pydantic
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from slackbot.domain.lifecycle import Lifecycle

__all__ = [
    "Adopted",
    "CancelRequested",
    "CardRefresh",
    "EventError",
    "Expired",
    "FeedEvents",
    "FeedItem",
    "LossChart",
    "ModelDeleted",
    "Notice",
    "OutboxEvent",
    "OutboxKind",
    "PostCard",
    "Rejected",
    "TrackingStarted",
    "Transition",
    "parse_event",
]


class OutboxKind(StrEnum):
    """The outbox row's kind: which family of message it is (stored in `outbox.kind`, queried by the store)."""

    CARD = "card"
    REPLY = "reply"
    REJECTED = "rejected"
    NOTICE = "notice"
    ADOPTED = "adopted"
    FEED = "feed"  # notable events of the job's log, grouped
    CHART = "chart"  # a loss-curve upload (its own lane: see delivery/uploads.py)
    CARD_UPDATE = "card_update"  # the card redrawn with newer details (no reply; nothing waits for it)


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: ClassVar[OutboxKind]

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class PostCard(_Event):
    """Post the job's status card. `adopted`: a refused job's model appeared after all, and the refusal told
    becomes the card (edited in place when it can be)."""

    kind: ClassVar[OutboxKind] = OutboxKind.CARD
    type: Literal["post_card"] = "post_card"
    adopted: bool = False


class TrackingStarted(_Event):
    """Post the card of a model made elsewhere that `by` asked the bot to follow (`/finetune track`)."""

    kind: ClassVar[OutboxKind] = OutboxKind.CARD
    type: Literal["tracking"] = "tracking"
    by: str


class Transition(_Event):
    """The job moved: a thread reply, and the card updated. Statuses are the service's own strings (None where
    it has none: a model that vanished); lifecycles are what the bot decides on."""

    kind: ClassVar[OutboxKind] = OutboxKind.REPLY
    type: Literal["transition"] = "transition"
    from_status: str | None
    to_status: str | None
    from_lifecycle: Lifecycle
    to_lifecycle: Lifecycle
    at: AwareDatetime
    error_message: str | None = None


class Rejected(_Event):
    """The service refused the create (or it never landed): the reason, and an "Edit and retry" button."""

    kind: ClassVar[OutboxKind] = OutboxKind.REJECTED
    type: Literal["rejected"] = "rejected"
    message: str
    issues: tuple[str, ...] = ()


class Expired(_Event):
    """The job ran longer than the bot follows jobs."""

    kind: ClassVar[OutboxKind] = OutboxKind.REPLY
    type: Literal["expired"] = "expired"
    max_age_hours: float


class Notice(_Event):
    """A fixed text of ours for the job's thread (e.g. the model list is too large to read at once)."""

    kind: ClassVar[OutboxKind] = OutboxKind.NOTICE
    type: Literal["notice"] = "notice"
    text: str


class Adopted(_Event):
    """A job told "was not started" whose model appeared after all: say so, with where it is now."""

    kind: ClassVar[OutboxKind] = OutboxKind.ADOPTED
    type: Literal["adopted"] = "adopted"
    status: str | None
    lifecycle: Lifecycle


class CancelRequested(_Event):
    """`by` asked the service to cancel the job (the card's Cancel): who, when, what it had cost by then (None:
    the service does not say) and the status the service answered (None: it did not change)."""

    kind: ClassVar[OutboxKind] = OutboxKind.REPLY
    type: Literal["cancel_requested"] = "cancel_requested"
    by: str
    at: AwareDatetime
    price_usd: float | None = None
    status: str | None = None
    lifecycle: Lifecycle | None = None


class ModelDeleted(_Event):
    """`by` deleted the job's model at the service (the card's menu). `existed` False: it was gone already."""

    kind: ClassVar[OutboxKind] = OutboxKind.REPLY
    type: Literal["model_deleted"] = "model_deleted"
    by: str
    at: AwareDatetime
    existed: bool = True


class FeedItem(BaseModel):
    """One notable event of the job's log as the service told it (its words are outside text)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    level: Literal["info", "warning", "error"] = "info"
    kind: str
    message: str
    at: str | None = None


class FeedEvents(_Event):
    """The notable events one read of the job's log brought (checkpoint saved, epoch done, warnings, a billing
    limit, errors): one thread reply for all of them. `more`: notable events left out to keep the reply short."""

    kind: ClassVar[OutboxKind] = OutboxKind.FEED
    type: Literal["feed_events"] = "feed_events"
    items: tuple[FeedItem, ...]
    more: int = 0


class LossChart(_Event):
    """Upload the job's loss curve to its thread, drawn at delivery time from the points the feed keeps.
    `through_step`: the last step read when it was queued; `final`: the job has ended."""

    kind: ClassVar[OutboxKind] = OutboxKind.CHART
    type: Literal["loss_chart"] = "loss_chart"
    through_step: int
    final: bool = False


class CardRefresh(_Event):
    """Redraw the card: what the service tells beyond the status (progress, ETA, price) changed. One row per job,
    queued again once delivered (see JobStore.update_details_many), so a running job's card stays current."""

    kind: ClassVar[OutboxKind] = OutboxKind.CARD_UPDATE
    type: Literal["card_refresh"] = "card_refresh"


OutboxEvent = Annotated[
    PostCard
    | TrackingStarted
    | Transition
    | Rejected
    | Expired
    | Notice
    | Adopted
    | CancelRequested
    | ModelDeleted
    | FeedEvents
    | LossChart
    | CardRefresh,
    Field(discriminator="type"),
]
_ADAPTER: TypeAdapter[OutboxEvent] = TypeAdapter(OutboxEvent)
_TYPES = (
    "post_card",
    "tracking",
    "transition",
    "rejected",
    "expired",
    "notice",
    "adopted",
    "cancel_requested",
    "model_deleted",
    "feed_events",
    "loss_chart",
    "card_refresh",
)


class EventError(ValueError):
    """A stored payload that is no event this version knows: says which, never guesses."""


def parse_event(payload: object) -> OutboxEvent:
    """The event a stored payload holds; `EventError` naming the problem if it is none."""
    if not isinstance(payload, dict):
        raise EventError(f"outbox payload is a {type(payload).__name__}, not an object")
    kind = payload.get("type")
    if kind not in _TYPES:
        raise EventError(f"outbox payload of unknown type {kind!r} (known: {', '.join(_TYPES)})")
    try:
        return _ADAPTER.validate_python(payload)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:])) or kind}: {e['msg']}" for e in exc.errors())
        raise EventError(f"outbox payload {kind!r} is malformed: {problems}") from None
