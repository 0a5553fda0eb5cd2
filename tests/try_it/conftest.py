"""A bot with one deployed OpenPipe model followed in #general, and a click on its Try it as Slack sends it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from slackbot import ids
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from tests.e2e.harness import OPENPIPE_KEY, STEP_SECONDS, Harness

ALICE, BOB = "U0ALICE", "U0BOB"


def follow(h: Harness, slug: str, channel: str = "C0GENERAL", user: str = ALICE) -> int:
    """A model created at OpenPipe and followed in `channel` by `user`: its job id, once its card is posted."""
    dataset = h.openpipe.add_dataset(f"Data for {slug}", entries=10)
    other = OpenPipeBackend(SecretStr(OPENPIPE_KEY), h.openpipe.url)
    try:
        spec = openpipe_spec(dataset_id=dataset, slug=slug, provider=Provider.OPENPIPE, base_model="Qwen/Qwen3-8B")
        other.create(spec)
    finally:
        other.close()
    assert "Looking up" in h.command(f"track {slug}", user_id=user, channel_id=channel)
    job = h.wait(lambda: h.runtime.store.by_slug(h.slack.team_id, slug))

    def card_posted() -> bool:
        found = h.runtime.store.get(job.id)
        if found is None or not found.card_ts:
            h.run_for(1, step=1)  # the channel may be waiting out its one post a second
            return False
        return True

    h.wait(card_posted)
    return int(job.id)


def deploy(h: Harness) -> None:
    """Bot time passes until every model at the local OpenPipe is DEPLOYED and told."""
    h.run_for(STEP_SECONDS * 5, step=STEP_SECONDS / 2)


def click_try_it(h: Harness, job_id: int, *, user: str = ALICE) -> httpx.Response:
    """The card's "Try it" button (value: the job id) clicked in its channel, as Slack sends it."""
    job = h.runtime.store.get(job_id)
    assert job is not None and job.card_ts and job.card_channel_id
    channel = job.card_channel_id
    return h.driver.post_payload(
        {
            "type": "block_actions",
            "team": {"id": h.slack.team_id, "domain": "local"},
            "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": h.slack.team_id},
            "api_app_id": h.slack.app_id,
            "token": "local-verification-token",
            "container": {"type": "message", "message_ts": job.card_ts, "channel_id": channel},
            "trigger_id": h.slack.issue_trigger_id(user_id=user),
            "channel": {"id": channel, "name": channel.lower()},
            "message": h.slack.shaped_message(channel, job.card_ts),
            "state": {"values": {}},
            "response_url": h.driver.response_url(),
            "actions": [
                {
                    "type": "button",
                    "block_id": ids.BLOCK_CARD_ACTIONS,
                    "action_id": ids.ACTION_TRY_IT,
                    "text": {"type": "plain_text", "text": "Try it"},
                    "value": str(job_id),
                    "action_ts": "1.0",
                }
            ],
        }
    )


def settled(h: Harness, view_id: str, *, leaving: str) -> dict[str, Any]:
    """The modal once it no longer shows `leaving` (a step after the ack, done in the background)."""
    view: dict[str, Any] = h.wait(lambda: (v := h.driver.view(view_id)) and leaving not in str(v["blocks"]) and v)
    return view


@pytest.fixture
def make_harness(tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(**settings: Any) -> Harness:
        h = Harness(tmp_path / f"bot{len(made)}", **settings)
        made.append(h)
        return h

    for path in (tmp_path / f"bot{i}" for i in range(4)):
        path.mkdir()
    yield make
    for h in made:
        h.close()


@pytest.fixture(scope="module")
def contract() -> Any:
    import json

    from tests.openpipe.conftest import Contract, spec_path

    return Contract(json.loads(spec_path().read_text("utf-8")))
