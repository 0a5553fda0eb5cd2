"""The outbox's typed events: each round-trips through its stored JSON, a payload that is no event is refused by
name, and the payloads older versions stored are converted by migration 0004 into events that parse."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from typing import Any

import pytest

from slackbot.domain.events import (
    Adopted,
    EventError,
    Expired,
    FeedEvents,
    FeedItem,
    LossChart,
    Notice,
    OutboxEvent,
    OutboxKind,
    PostCard,
    Rejected,
    TrackingStarted,
    Transition,
    parse_event,
)
from slackbot.domain.lifecycle import Lifecycle

AT = datetime(2026, 7, 1, 12, 30, tzinfo=UTC)
migration: Any = importlib.import_module("slackbot.jobs.migrations.versions.0004_neutral_lifecycle")

EVENTS: list[tuple[OutboxEvent, OutboxKind]] = [
    (PostCard(), OutboxKind.CARD),
    (PostCard(adopted=True), OutboxKind.CARD),
    (TrackingStarted(by="U0ALICE"), OutboxKind.CARD),
    (
        Transition(
            from_status="QUEUED",
            to_status="TRAINING",
            from_lifecycle=Lifecycle.QUEUED,
            to_lifecycle=Lifecycle.RUNNING,
            at=AT,
        ),
        OutboxKind.REPLY,
    ),
    (
        Transition(
            from_status="TRAINING",
            to_status=None,
            from_lifecycle=Lifecycle.RUNNING,
            to_lifecycle=Lifecycle.GONE,
            at=AT,
            error_message="deleted",
        ),
        OutboxKind.REPLY,
    ),
    (Rejected(message="Input validation failed", issues=("slug: taken",)), OutboxKind.REJECTED),
    (Expired(max_age_hours=72), OutboxKind.REPLY),
    (Notice(text="Updates may come later."), OutboxKind.NOTICE),
    (Adopted(status="TRAINING", lifecycle=Lifecycle.RUNNING), OutboxKind.ADOPTED),
    (
        FeedEvents(items=(FeedItem(level="warning", kind="warning", message="loss spiked", at="2026-07-01"),), more=2),
        OutboxKind.FEED,
    ),
    (LossChart(through_step=120), OutboxKind.CHART),
    (LossChart(through_step=400, final=True), OutboxKind.CHART),
]


@pytest.mark.parametrize(("event", "kind"), EVENTS, ids=[event.type for event, _ in EVENTS])
def test_each_event_round_trips_through_its_stored_json(event: OutboxEvent, kind: OutboxKind) -> None:
    stored = event.to_json()
    assert stored["type"] == event.type
    assert parse_event(stored) == event
    assert type(parse_event(stored)) is type(event) and event.kind is kind


def test_every_event_type_is_covered() -> None:
    assert {type(event) for event, _ in EVENTS} == {
        PostCard,
        TrackingStarted,
        Transition,
        Rejected,
        Expired,
        Notice,
        Adopted,
        FeedEvents,
        LossChart,
    }


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"type": "from_the_future"}, "unknown type 'from_the_future' (known: post_card, tracking, transition"),
        ({"text": "no type"}, "unknown type None"),
        (["type", "notice"], "outbox payload is a list, not an object"),
        ({"type": "notice"}, "outbox payload 'notice' is malformed: text: Field required"),
        ({"type": "expired", "max_age_hours": "soon"}, "'expired' is malformed: max_age_hours:"),
        ({"type": "notice", "text": "hi", "extra": 1}, "'notice' is malformed: extra: Extra inputs are not permitted"),
        (
            {"type": "transition", "from": "QUEUED", "to": "TRAINING", "at": AT.isoformat()},
            "'transition' is malformed: from_status: Field required",
        ),
    ],
)
def test_a_payload_that_is_no_event_is_refused_by_name(payload: Any, message: str) -> None:
    with pytest.raises(EventError) as refused:
        parse_event(payload)
    assert message in str(refused.value)


def test_a_transition_needs_an_aware_moment() -> None:
    payload = EVENTS[3][0].to_json() | {"at": "2026-07-01T12:30:00"}
    with pytest.raises(EventError, match="'transition' is malformed: at: "):
        parse_event(payload)


OLD_PAYLOADS: list[tuple[dict[str, Any], OutboxEvent]] = [
    ({"type": "post_card"}, PostCard()),
    ({"type": "post_card", "adopted": True}, PostCard(adopted=True)),
    ({"type": "tracking", "by": "U7"}, TrackingStarted(by="U7")),
    (
        {"type": "transition", "from": "QUEUED", "to": "PROVISIONING", "at": AT.isoformat(), "error_message": None},
        Transition(
            from_status="QUEUED",
            to_status="PROVISIONING",
            from_lifecycle=Lifecycle.QUEUED,
            to_lifecycle=Lifecycle.RUNNING,
            at=AT,
        ),
    ),
    (
        {"type": "transition", "from": "TRAINING", "to": "ERROR", "at": AT.isoformat(), "error_message": "OOM"},
        Transition(
            from_status="TRAINING",
            to_status="ERROR",
            from_lifecycle=Lifecycle.RUNNING,
            to_lifecycle=Lifecycle.FAILED,
            at=AT,
            error_message="OOM",
        ),
    ),
    (
        {"type": "transition", "from": "TRAINING", "to": "DELETED", "at": AT.isoformat(), "error_message": "gone"},
        Transition(
            from_status="TRAINING",
            to_status=None,
            from_lifecycle=Lifecycle.RUNNING,
            to_lifecycle=Lifecycle.GONE,
            at=AT,
            error_message="gone",
        ),
    ),
    (
        {"type": "transition", "from": "TRAINING", "to": "WARMING_UP", "at": AT.isoformat(), "error_message": None},
        Transition(
            from_status="TRAINING",
            to_status="WARMING_UP",
            from_lifecycle=Lifecycle.RUNNING,
            to_lifecycle=Lifecycle.UNKNOWN,
            at=AT,
        ),
    ),
    ({"type": "rejected", "message": "no", "issues": ["a", "b"]}, Rejected(message="no", issues=("a", "b"))),
    ({"type": "expired", "max_age_hours": 72}, Expired(max_age_hours=72.0)),
    ({"type": "notice", "text": "later"}, Notice(text="later")),
    ({"type": "adopted", "status": "DEPLOYED"}, Adopted(status="DEPLOYED", lifecycle=Lifecycle.SUCCEEDED)),
]


@pytest.mark.parametrize(("old", "event"), OLD_PAYLOADS, ids=[str(old["type"]) for old, _ in OLD_PAYLOADS])
def test_payloads_stored_by_older_versions_become_events(old: dict[str, Any], event: OutboxEvent) -> None:
    converted = migration.upgrade_payload(old)
    assert parse_event(converted) == event
    assert migration.upgrade_payload(converted) == converted  # converting twice changes nothing
    if old["type"] in ("transition", "adopted"):  # the only shapes 0004 changed: its downgrade restores them
        assert migration.downgrade_payload(converted) == old
    else:
        assert converted is old
