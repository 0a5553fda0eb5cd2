"""A Together fine-tune's life after its start, over signed HTTP against the local Together and the local Slack: the
card's Cancel (who may, sent once, told once), the card's progress, time left and price while it runs and the model
to call once it completed, Try it answered by the local Together's chat completions, and Delete from the card's
menu. Slack's confirm dialogs are client-side: a click arrives only once the user confirmed, so the click is the
action. Every request the bot sent is checked against Together's spec and SDK."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from slackbot import ids
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs import outbox_writes
from slackbot.sandbox.together_api import SUPPORTED_MODELS
from tests.e2e.cards import (
    CHANNEL,
    blocks_text,
    card_now,
    card_once,
    click,
    controls,
    ephemerals_to,
    thread_texts,
    told_after_pacing,
)
from tests.e2e.harness import STEP_SECONDS
from tests.together.bot import TOGETHER_KEY, TogetherBot
from tests.together.conftest import PACKAGED_SPEC, Contract, check_sent
from tests.try_it.conftest import settled

ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"


@pytest.fixture(scope="module")
def contract() -> Contract:
    """Together's spec (tests/e2e's own `contract` is OpenPipe's)."""
    return Contract(yaml.safe_load(PACKAGED_SPEC.read_text("utf-8")))


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[TogetherBot]:
    made = TogetherBot(tmp_path, admin_users=CAROL)
    made.slack.add_user(CAROL, "carol")
    try:
        yield made
    finally:
        made.close()


def start(bot: TogetherBot, slug: str, epochs: int = 1) -> tuple[dict[str, Any], Any]:
    """Alice starts a Together fine-tune through the form and its price confirmation: its card, and its job."""
    values = {ids.block_base_model("lora"): SUPPORTED_MODELS[0], ids.BLOCK_SLUG: slug, "n_epochs": str(epochs)}
    bot.submit_and_confirm(bot.open_modal(), "support-tickets", values)
    bot.wait(lambda: [b for b in bot.creates() if b["suffix"] == slug])
    card: dict[str, Any] = bot.wait(lambda: [m for m in bot.bot_messages(CHANNEL) if slug in m["text"]])[0]
    job = bot.runtime.store.by_slug(bot.slack.team_id, slug)
    assert job is not None and job.model_id is not None
    return card, job


def until_status(bot: TogetherBot, slug: str, status: str) -> Any:
    """Tick by tick (each: the tracker, then the notifier) until the bot has seen `status`; the job then, with the
    local Together's clock where that tick left it."""
    for _ in range(int(STEP_SECONDS * 12 / 5)):
        bot.run_for(5, step=5.0)
        job = bot.runtime.store.by_slug(bot.slack.team_id, slug)
        if job is not None and job.status == status:
            return job
    raise AssertionError(f"{slug} never reached {status}")


def sent(bot: TogetherBot, method: str, path: str) -> list[Any]:
    return [r for r in bot.together.requests if (r.method, r.path) == (method, path)]


def test_cancel_from_the_card_the_requester_may_a_stranger_may_not(bot: TogetherBot, contract: Contract) -> None:
    card, job = start(bot, "to-cancel", epochs=20)
    until_status(bot, "to-cancel", "running")
    bot.run_for(STEP_SECONDS * 1.5, step=5.0)  # halfway through training: part of it billed
    cancel = controls(card_now(bot, card))
    assert list(cancel) == [ids.ACTION_CANCEL_JOB] and cancel[ids.ACTION_CANCEL_JOB]["confirm"]["style"] == "danger"
    path = f"/fine-tunes/{job.model_id}/cancel"

    # Bob neither started it nor is an admin: told why, only him; Together is not asked.
    click(bot, card, ids.ACTION_CANCEL_JOB, BOB)
    assert bot.wait(lambda: ephemerals_to(bot, BOB)) == [
        f"Only <@{ALICE}>, who started *to-cancel*, or an admin of this app (ADMIN_USERS) can cancel it."
    ]
    assert not sent(bot, "POST", path)

    # Alice confirms Slack's dialog; Slack delivers the click again: Together is asked once, the thread told once.
    full_price = bot.together.job(job.model_id)["total_price"] / 1e9
    payload = click(bot, card, ids.ACTION_CANCEL_JOB, ALICE)
    told_after_pacing(bot, job.id, "cancel")
    assert bot.driver.post_payload(payload).status_code == 200
    assert bot.wait(lambda: ephemerals_to(bot, ALICE)) == [f"<@{ALICE}> already asked Together to cancel *to-cancel*."]
    assert len(sent(bot, "POST", path)) == 1
    billed = bot.together.job(job.model_id)["total_price"] / 1e9  # the steps trained; the rest refunded
    assert 0 < billed < full_price and f"{billed:,.2f}" != f"{full_price:,.2f}"
    told = [t for t in thread_texts(bot, card) if "was cancelled" in t]
    assert told == [f"to-cancel was cancelled; it had cost ${billed:,.2f} so far"]
    reply = next(m for m in bot.slack.thread(CHANNEL, card["ts"]) if "was cancelled" in m["text"])
    assert f"<@{ALICE}> cancelled *to-cancel*" in blocks_text(reply)
    assert "Cancel requested — stopping the job" in blocks_text(reply)
    updated = card_now(bot, card)
    assert f"Cancel requested by <@{ALICE}>" in blocks_text(updated) and controls(updated) == {}

    # Together then says it stopped: the tracker tells `cancelled` once, and the card offers Delete.
    done = until_status(bot, "to-cancel", "cancelled")
    assert done.lifecycle is Lifecycle.CANCELLED and not done.tracking
    bot.run_for(30, step=5.0)
    keys = [r.dedupe_key for r in bot.runtime.store.outbox_for_job(job.id)]
    assert keys.count("reply:cancelled") == 1 and keys.count("cancel") == 1
    assert len([t for t in thread_texts(bot, card) if t.endswith("to-cancel: Cancelled")]) == 1
    assert len([t for t in thread_texts(bot, card) if "was cancelled" in t]) == 1
    finished = card_now(bot, card)
    assert list(controls(finished)) == [ids.ACTION_JOB_MENU]
    # Redrawn for the end, the card still says who stopped it, now as done.
    assert f"Cancelled by <@{ALICE}>" in blocks_text(finished) and "Cancel requested by" not in blocks_text(finished)
    assert "post" in contract.spec["paths"]["/fine-tunes/{id}/cancel"]
    check_sent(bot.together, contract)


def test_an_admin_may_cancel_anyones_fine_tune(bot: TogetherBot, contract: Contract) -> None:
    card, job = start(bot, "admin-stops")
    until_status(bot, "admin-stops", "running")
    click(bot, card, ids.ACTION_CANCEL_JOB, CAROL)
    told_after_pacing(bot, job.id, "cancel")
    assert len(sent(bot, "POST", f"/fine-tunes/{job.model_id}/cancel")) == 1
    reply = next(m for m in bot.slack.thread(CHANNEL, card["ts"]) if "was cancelled" in m["text"])
    assert f"<@{CAROL}> cancelled *admin-stops*" in blocks_text(reply) and f"<@{ALICE}>" in blocks_text(reply)
    assert not ephemerals_to(bot, CAROL)
    done = until_status(bot, "admin-stops", "cancelled")
    assert done.lifecycle is Lifecycle.CANCELLED
    bot.run_for(30, step=5.0)
    assert [r.dedupe_key for r in bot.runtime.store.outbox_for_job(job.id)].count("reply:cancelled") == 1
    check_sent(bot.together, contract)


def test_the_card_shows_progress_and_price_then_the_model_to_call_at_the_configured_url(
    bot: TogetherBot, contract: Contract
) -> None:
    card, job = start(bot, "shown-card", epochs=3)
    running = until_status(bot, "shown-card", "running")
    # What the tracker read from the local Together (its clock where that tick left it), and the card drawn from it.
    raw = bot.together.job(job.model_id)
    details = running.details
    assert details is not None and details.eta_seconds == raw["progress"]["seconds_remaining"] == STEP_SECONDS * 5
    assert details.price_usd == pytest.approx(raw["total_price"] / 1e9) and details.price_usd > 0
    assert details.output_model == raw["model_output_name"]
    shown = blocks_text(card_once(bot, card, lambda m: "Training" in blocks_text(m)))
    assert "*Progress* about 5 min left" in shown
    assert f"*Cost*\\n${details.price_usd:,.2f} so far" in shown
    assert "Call it as" not in shown

    done = until_status(bot, "shown-card", "completed")
    final = card_once(bot, card, lambda m: "Call it as" in blocks_text(m))
    shown = blocks_text(final)
    model = raw["model_output_name"]
    assert done.details is not None and done.details.output_model == model
    assert f"*Cost*\\n${done.details.price_usd:,.2f}" in shown and "so far" not in shown
    assert "*Progress*" not in shown
    section = next(b["text"]["text"] for b in final["blocks"] if "Call it as" in json.dumps(b))
    assert section.startswith(f"Call it as `{model}`:")
    # The example is against the configured TOGETHER_BASE_URL (its API under /v1), not OpenPipe's.
    example = re.search(r"curl (\S+) .*-d '(.*)'", section)
    assert example is not None, section
    url, body = example.group(1), json.loads(example.group(2).replace("&quot;", '"'))
    assert url == f"{bot.together.url}/v1/chat/completions" and "$TOGETHER_API_KEY" in section
    assert bot.openpipe.url not in shown and "openpipe" not in section.lower()
    assert body == {"model": model, "messages": [{"role": "user", "content": "Hello"}]}
    # And it works as shown, against the local Together.
    answer = httpx.post(url, json=body, headers={"Authorization": f"Bearer {TOGETHER_KEY}"}, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["choices"][0]["message"]["content"] == "[shown-card] you said: Hello"
    check_sent(bot.together, contract)


def test_try_it_on_a_completed_model_shows_the_local_togethers_answer(bot: TogetherBot, contract: Contract) -> None:
    card, job = start(bot, "try-me")
    until_status(bot, "try-me", "completed")
    model = bot.together.job(job.model_id)["model_output_name"]
    completed = card_once(bot, card, lambda m: "Call it as" in blocks_text(m))
    assert list(controls(completed)) == [ids.ACTION_TRY_IT, ids.ACTION_JOB_MENU]
    posted = len(bot.slack.calls_to("chat.postMessage"))

    click(bot, card, ids.ACTION_TRY_IT, ALICE, str(job.id))
    opened = bot.driver.wait_for_view()
    view = settled(bot, opened["id"], leaving="Getting the model ready")
    assert view["callback_id"] == ids.VIEW_TRY_IT and view["submit"]["text"] == "Ask"
    assert f"`{model}`" in blocks_text(view)
    answer = bot.driver.view_submission(view["id"], {ids.BLOCK_TRY_PROMPT: "How do I reset my password?"})
    assert answer.status_code == 200 and answer.json()["response_action"] == "update", answer.text
    final = settled(bot, view["id"], leaving="Asking")
    assert "[try-me] you said: How do I reset my password?" in blocks_text(final)
    assert final["submit"]["text"] == "Ask again"
    # One chat completion, at the local Together, for the job's output model; nothing posted in Slack.
    [chat] = sent(bot, "POST", "/chat/completions")
    assert chat.json["model"] == model
    assert chat.json["messages"][-1] == {"role": "user", "content": "How do I reset my password?"}
    assert len(bot.slack.calls_to("chat.postMessage")) == posted
    check_sent(bot.together, contract)


def test_delete_a_completed_model_from_the_cards_menu(bot: TogetherBot, contract: Contract) -> None:
    card, job = start(bot, "to-delete")
    until_status(bot, "to-delete", "completed")
    menu = controls(card_once(bot, card, lambda m: "Call it as" in blocks_text(m)))[ids.ACTION_JOB_MENU]
    assert [o["value"] for o in menu["options"]] == [f"delete:{job.id}"] and menu["confirm"]["style"] == "danger"
    path = f"/fine-tunes/{job.model_id}"

    click(bot, card, ids.ACTION_JOB_MENU, BOB, f"delete:{job.id}")
    assert bot.wait(lambda: ephemerals_to(bot, BOB))[0].startswith(f"Only <@{ALICE}>, who started *to-delete*")
    assert not sent(bot, "DELETE", path)

    payload = click(bot, card, ids.ACTION_JOB_MENU, ALICE, f"delete:{job.id}")
    told_after_pacing(bot, job.id, "deleted")
    assert bot.driver.post_payload(payload).status_code == 200  # redelivered
    assert bot.wait(lambda: ephemerals_to(bot, ALICE)) == ["*to-delete* is already deleted."]
    [deleted] = sent(bot, "DELETE", path)
    assert deleted.json is None and "delete" in contract.spec["paths"]["/fine-tunes/{id}"]
    reply = next(m for m in bot.slack.thread(CHANNEL, card["ts"]) if "was deleted" in m["text"])
    assert f"<@{ALICE}> deleted the model *to-delete* on <!date^" in blocks_text(reply)
    updated = card_now(bot, card)
    assert f"Deleted by <@{ALICE}>" in blocks_text(updated) and controls(updated) == {}
    after = bot.runtime.store.get(job.id)
    assert after is not None and after.lifecycle is Lifecycle.GONE and not after.tracking
    bot.run_for(30, step=5.0)  # no longer followed: told once, and Together is not asked about it again
    assert len([t for t in thread_texts(bot, card) if "was deleted" in t]) == 1
    assert not [r for r in bot.together.requests if r.path.startswith(path) and r.time > deleted.time]
    check_sent(bot.together, contract)
    # Gone at the local Together too.
    gone = httpx.get(f"{bot.together.url}/v1{path}", headers={"Authorization": f"Bearer {TOGETHER_KEY}"}, timeout=5)
    assert gone.status_code == 404


def test_a_running_jobs_card_follows_its_details_without_a_reply_and_within_a_pace(
    bot: TogetherBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Between two statuses only the details move (the time left, every tick): the card is redrawn, nothing is
    # posted, and no more often than CARD_REFRESH_SECONDS (chat.update is rated for the whole workspace). The pace
    # is shortened here so that it shows within the local Together's three minutes of training.
    monkeypatch.setattr(outbox_writes, "CARD_REFRESH_SECONDS", 60.0)
    card, _ = start(bot, "moving-card", epochs=3)
    until_status(bot, "moving-card", "running")
    card_once(bot, card, lambda m: "about 5 min left" in blocks_text(m))
    replies = thread_texts(bot, card)

    def card_updates() -> int:
        return sum(1 for c in bot.slack.calls_to("chat.update") if c.args.get("ts") == card["ts"])

    before, seen = card_updates(), []
    for _ in range(int(STEP_SECONDS * 2 / 5) - 2):  # 110 s of ticks, all within "running"
        bot.run_for(5, step=5.0)
        seen.append(card_updates() - before)
        if "about 4 min left" in blocks_text(card_now(bot, card)):
            break
    job = bot.runtime.store.by_slug(bot.slack.team_id, "moving-card")
    assert job is not None and job.status == "running"
    assert "about 4 min left" in blocks_text(card_now(bot, card)), seen
    # At most one redraw per 60 s of the bot's clock (12 ticks of 5 s), however often the time left moved.
    assert seen[-1] <= 1 + len(seen) // 12, seen
    assert thread_texts(bot, card) == replies, "a details-only change posted a reply"
