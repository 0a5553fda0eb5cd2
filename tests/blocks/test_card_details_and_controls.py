"""The card beyond the status: progress, ETA, price, the model to call, and its controls, each shown only when the
job's details have it and its backend's Capabilities allow it. Pure builders: no Slack, no store."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from slackbot import ids
from slackbot.backends.base import FineTuneSpec, JobDetails
from slackbot.backends.declaration import Capabilities
from slackbot.backends.registry import registered
from slackbot.blocks.card import eta_text, status_card
from slackbot.blocks.replies import control_reply
from slackbot.domain.events import CancelRequested, ModelDeleted
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord
from tests.notify.test_blocks import T0, all_text, assert_valid, make_job
from tests.stand_ins.toy import TOY_STATUSES, toy_declaration

ALL = Capabilities(cancel=True, delete=True, chat_completions=True, eta=True, price_estimate=True)
TOY_BASE = "http://toy.local/v1"


def toy_job(status: str | None = "baking", **changes: Any) -> JobRecord:
    spec = FineTuneSpec(backend="toy", dataset_id="toy-ds-1", slug="toy-model", base_model="toy-base-1")
    changes.setdefault("lifecycle", TOY_STATUSES.lifecycle(status or ""))
    changes.setdefault("spec", spec)
    return make_job(backend="toy", status=status, provider="", **changes)


def actions(rendered: tuple[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    blocks = [b for b in rendered[1] if b.get("block_id") == ids.BLOCK_CARD_ACTIONS]
    assert len(blocks) <= 1
    return blocks[0]["elements"] if blocks else []


def action_ids(rendered: tuple[str, list[dict[str, Any]]]) -> list[str]:
    return [e["action_id"] for e in actions(rendered)]


@pytest.fixture(autouse=True)
def _toy_declared() -> Any:
    with registered(toy_declaration(**{name: True for name in ALL.names()})):
        yield


def test_a_running_job_shows_progress_eta_and_the_price_so_far() -> None:
    job = toy_job(details=JobDetails(progress=0.4, eta_seconds=25 * 60 + 10, price_usd=12.345))
    rendered = status_card(job, T0 + timedelta(minutes=30), TOY_BASE, caps=ALL)
    assert_valid(rendered)
    body = all_text(rendered)
    assert "`▓▓▓▓░░░░░░` 40%" in body and "about 25 min left" in body
    assert "*Cost*\\n$12.35 so far" in body
    assert "Call it as" not in body  # not done yet


def test_steps_make_the_bar_when_the_service_gives_no_share() -> None:
    job = toy_job(details=JobDetails(steps_done=120, steps_total=300))
    body = all_text(status_card(job, T0, TOY_BASE, caps=ALL))
    assert "`▓▓▓▓░░░░░░` 40% (step 120 of 300)" in body


def test_nothing_is_shown_that_the_service_did_not_tell_or_the_backend_cannot() -> None:
    bare = all_text(status_card(toy_job(), T0, TOY_BASE, caps=ALL))
    assert "*Progress*" not in bare and "*Cost*" not in bare
    # An ETA from a backend that does not declare one is not shown; its progress still is.
    no_eta = Capabilities(cancel=True)
    body = all_text(status_card(toy_job(details=JobDetails(progress=0.5, eta_seconds=600)), T0, caps=no_eta))
    assert "50%" in body and "min left" not in body


def test_an_ended_job_shows_its_price_without_so_far_and_no_progress() -> None:
    job = toy_job("baked", details=JobDetails(progress=1.0, price_usd=7.5), tracking=False, finished_at=T0)
    body = all_text(status_card(job, T0, TOY_BASE, caps=ALL))
    assert "*Cost*\\n$7.50" in body and "so far" not in body and "*Progress*" not in body


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (20, "less than a minute left"),
        (25 * 60, "about 25 min left"),
        (2 * 3600 + 600, "about 2 h 10 min left"),
        (3 * 3600, "about 3 h left"),
    ],
)
def test_eta_words(seconds: float, words: str) -> None:
    assert eta_text(seconds) == words


def test_a_succeeded_job_names_the_model_and_shows_an_example_only_when_it_serves_chat() -> None:
    job = toy_job("baked", details=JobDetails(output_model="acct/toy-model-ft-1"), tracking=False, finished_at=T0)
    body = all_text(status_card(job, T0, TOY_BASE, caps=ALL))
    assert "Call it as `acct/toy-model-ft-1`" in body
    assert f"curl {TOY_BASE}/chat/completions" in body and "$TOY_API_KEY" in body
    assert "OPENPIPE" not in body and "api.openpipe.ai" not in body
    no_chat = all_text(status_card(job, T0, TOY_BASE, caps=Capabilities(delete=True)))
    assert "Call it as `acct/toy-model-ft-1`." in no_chat and "curl" not in no_chat
    no_base = all_text(status_card(job, T0, None, caps=ALL))  # the backend's base URL is not known here
    assert "Call it as `acct/toy-model-ft-1`." in no_base and "curl" not in no_base


def test_controls_follow_capabilities_and_the_jobs_state() -> None:
    running = toy_job("baking")
    assert action_ids(status_card(running, T0, caps=ALL)) == [ids.ACTION_CANCEL_JOB]
    assert action_ids(status_card(running, T0, caps=Capabilities(delete=True, chat_completions=True))) == []
    cooling = toy_job("cooling")
    assert action_ids(status_card(cooling, T0, caps=ALL)) == []  # already asked to stop
    expired = toy_job("baking", tracking=False)
    assert action_ids(status_card(expired, T0 + timedelta(days=4), caps=ALL)) == []
    baked = toy_job("baked", tracking=False, finished_at=T0)
    assert action_ids(status_card(baked, T0, caps=ALL)) == [ids.ACTION_TRY_IT, ids.ACTION_JOB_MENU]
    assert action_ids(status_card(baked, T0, caps=Capabilities(delete=True))) == [ids.ACTION_JOB_MENU]
    burnt = toy_job("burnt", tracking=False, finished_at=T0)
    assert action_ids(status_card(burnt, T0, caps=ALL)) == [ids.ACTION_JOB_MENU]  # nothing to try
    gone = toy_job("baked", lifecycle=Lifecycle.GONE, tracking=False, finished_at=T0)
    assert action_ids(status_card(gone, T0, caps=ALL)) == []
    submitting = toy_job(status=None, lifecycle=Lifecycle.SUBMITTING)
    assert action_ids(status_card(submitting, T0, caps=ALL)) == []


def test_cancel_and_delete_ask_for_confirmation_and_carry_the_job_id() -> None:
    cancel = actions(status_card(toy_job("baking"), T0, caps=ALL))[0]
    assert cancel["value"] == "7" and cancel["style"] == "danger"
    assert cancel["confirm"]["style"] == "danger" and cancel["confirm"]["confirm"]["text"] == "Cancel it"
    assert "toy-model" in cancel["confirm"]["text"]["text"]
    baked = toy_job("baked", tracking=False, finished_at=T0)
    try_it, menu = actions(status_card(baked, T0, caps=ALL))
    assert try_it["value"] == "7" and try_it["text"]["text"] == "Try it"
    assert [o["value"] for o in menu["options"]] == ["delete:7"]
    assert menu["options"][0]["text"]["text"] == "Delete model"
    assert menu["confirm"]["style"] == "danger" and "cannot be undone" in menu["confirm"]["text"]["text"]


def test_a_hostile_slug_in_a_confirm_dialog_is_plain_text() -> None:
    spec = FineTuneSpec(backend="toy", dataset_id="d", slug="x", base_model="toy-base-1")
    job = toy_job("baking", slug="<!channel> *boom*", spec=spec)
    cancel = actions(status_card(job, T0, caps=ALL))[0]
    # plain_text: Slack shows it as typed, it cannot ping or format.
    assert cancel["confirm"]["text"] == {
        "type": "plain_text",
        "text": "<!channel> *boom* stops training. What it cost so far is still charged.",
    }


def test_openpipe_by_its_declaration_offers_delete_and_try_it_but_no_cancel() -> None:
    running = make_job(status="TRAINING")
    assert action_ids(status_card(running, T0)) == []
    deployed = make_job(status="DEPLOYED", tracking=False, finished_at=T0)
    assert action_ids(status_card(deployed, T0)) == [ids.ACTION_TRY_IT, ids.ACTION_JOB_MENU]
    body = all_text(status_card(deployed, T0))
    assert "`openpipe:support-bot-v2`" in body and "$OPENPIPE_API_KEY" in body


def test_who_cancelled_or_deleted_is_on_the_card_and_in_the_thread() -> None:
    deleted_job = toy_job("baked", lifecycle=Lifecycle.GONE, tracking=False, finished_at=T0)
    deleted = ModelDeleted(by="U0BOB", at=T0 + timedelta(hours=1))
    card = status_card(deleted_job, T0, caps=ALL, note=deleted)
    assert_valid(card)
    assert "Deleted by <@U0BOB> on <!date^" in all_text(card) and action_ids(card) == []
    reply = control_reply(deleted_job, deleted)
    assert_valid(reply)
    assert "<@U0BOB> deleted the model *toy-model*" in all_text(reply) and "<@U0ALICE>" in all_text(reply)

    cancelled = CancelRequested(by="U0ALICE", at=T0, price_usd=3.2, status="cooling", lifecycle=Lifecycle.CANCELLING)
    reply = control_reply(toy_job("cooling"), cancelled)
    assert_valid(reply)
    text = all_text(reply)
    assert "<@U0ALICE> cancelled *toy-model*" in text and "it had cost $3.20 so far" in text
    assert "Cooling down — the oven is being stopped" in text
    assert text.count("<@U0ALICE>") == 1  # the canceller is the requester: not mentioned a second time
    asked = all_text(status_card(toy_job("cooling"), T0, caps=ALL, note=cancelled))
    assert "Cancel requested by <@U0ALICE>" in asked
    off = toy_job("off", tracking=False, finished_at=T0)
    assert "Cancelled by <@U0ALICE>" in all_text(status_card(off, T0, caps=ALL, note=cancelled))
    unknown = control_reply(toy_job("baking"), CancelRequested(by="U0BOB", at=T0))
    assert "did not say what it had cost" in all_text(unknown)


def test_every_card_state_fits_slacks_limits() -> None:
    details = JobDetails(
        progress=0.99, eta_seconds=5, price_usd=1e6, output_model="m" * 500, steps_done=1, steps_total=3
    )
    for status in ("waiting", "baking", "baked", "burnt", "cooling", "off"):
        job = toy_job(status, details=details, slug="s" * 200, tracking=status in ("waiting", "baking", "cooling"))
        rendered = status_card(job, T0, TOY_BASE, caps=ALL, note=CancelRequested(by="U0BOB", at=T0))
        assert_valid(rendered)
        json.dumps(rendered)
