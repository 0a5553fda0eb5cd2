"""Together end to end over signed HTTP: `/finetune` → the modal of Together's form → estimate and create at the
local Together → the card → a reply per status, followed by job id; SFT LoRA, SFT full, DPO, an error job, the
model's limits in the form, and both backends at once. Every request the bot sent is checked against Together's
spec and SDK."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from slackbot import ids
from slackbot.backends.together.backend import is_job_id
from slackbot.domain.lifecycle import Lifecycle
from slackbot.sandbox.together_api import SUPPORTED_MODELS
from tests.e2e.confirmation import filled_in, view_text
from tests.e2e.harness import STEP_SECONDS
from tests.together.bot import TogetherBot, told_keys
from tests.together.conftest import PACKAGED_SPEC, Contract, check_sent

SMALL, BIG = SUPPORTED_MODELS[0], SUPPORTED_MODELS[1]
DATASET = "support-tickets-2026-q3.jsonl"
CHANNEL = "C0GENERAL"
TOLD = ["card:post", "reply:queued", "reply:running", "reply:compressing", "reply:uploading", "reply:completed"]


@pytest.fixture(scope="module")
def contract() -> Contract:
    """Together's spec (tests/e2e's own `contract` is OpenPipe's)."""
    return Contract(yaml.safe_load(PACKAGED_SPEC.read_text("utf-8")))


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[TogetherBot]:
    made = TogetherBot(tmp_path)
    try:
        yield made
    finally:
        made.close()


def _block_ids(view: dict[str, Any]) -> list[str]:
    return [b.get("block_id", "") for b in view["blocks"]]


def _finish(bot: TogetherBot, slug: str) -> Any:
    bot.run_for(STEP_SECONDS * 9, step=5.0)
    job = bot.runtime.store.by_slug(bot.slack.team_id, slug)
    assert job is not None
    return job


def _replies(bot: TogetherBot, card_ts: str) -> list[str]:
    return [m["text"] for m in bot.slack.thread(CHANNEL, card_ts) if m["ts"] != card_ts]


def test_sft_lora_from_the_modal_to_the_completed_model(bot: TogetherBot, contract: Contract) -> None:
    view = bot.open_modal()
    blocks = _block_ids(view)
    assert ids.BLOCK_BACKEND not in blocks and ids.BLOCK_PROVIDER not in blocks  # Together alone: no choice
    assert {"training_type", "enable_sft", "train_on_inputs", "lora_r", "n_epochs", "learning_rate"} <= set(blocks)
    assert "dpo_beta" not in blocks  # DPO's fields show once DPO is switched on
    base = next(b for b in view["blocks"] if b.get("block_id") == ids.block_base_model("lora"))
    assert [o["value"] for o in base["element"]["options"]] == list(SUPPORTED_MODELS)
    label = next(b for b in view["blocks"] if b.get("block_id") == "learning_rate")["label"]["text"]
    assert "absolute" in label
    shown = bot.submit_and_confirm(
        view,
        DATASET,
        {
            ids.block_base_model("lora"): SMALL,
            ids.BLOCK_SLUG: "support-lora",
            "n_epochs": "2",
            "lora_r": "32",
            "learning_rate": "0.00002",
        },
    )
    [body] = bot.wait(bot.creates)
    # The price confirmed was estimated for exactly the job then created (and the create asks again first, in
    # case the account's limit changed meanwhile).
    estimates = bot.estimates()
    assert len(estimates) == 2 and all({k: body.get(k) for k in e} == e for e in estimates), estimates
    assert body["suffix"] == "support-lora" and body["model"] == SMALL and body["n_epochs"] == 2
    assert body["training_type"] == {"type": "Lora", "lora_r": 32, "lora_alpha": 64}
    assert body["training_method"] == {"method": "sft", "train_on_inputs": "auto"}
    card = bot.wait(lambda: bot.bot_messages(CHANNEL))[0]
    job = bot.runtime.store.by_slug(bot.slack.team_id, "support-lora")
    assert job is not None and job.backend == "together" and job.model_id is not None and is_job_id(job.model_id)
    assert job.key == job.model_id and job.project == bot.runtime.backends["together"].project

    job = _finish(bot, "support-lora")
    assert job.status == "completed" and job.lifecycle is Lifecycle.SUCCEEDED and not job.tracking
    assert told_keys(bot, job.id) == TOLD
    assert len(_replies(bot, card["ts"])) == len(TOLD) - 1  # each status told once in the thread
    assert job.details is not None and job.details.progress == 1.0
    raw = bot.together.job(job.model_id)
    assert job.details.output_model == raw["model_output_name"]
    assert job.details.price_usd == pytest.approx(raw["total_price"] / 1e9)
    assert f"*Estimated price:* ${raw['total_price'] / 1e9:,.2f}" in view_text(shown)  # what the user confirmed
    assert f"*Tokens:* {raw['token_count']:,}" in view_text(shown)
    # Followed by the one list read per tick: no per-job read for a job the list shows.
    assert not [r for r in bot.together.requests if r.method == "GET" and r.path.startswith("/fine-tunes/ft-")]
    assert check_sent(bot.together, contract) > 5


def test_sft_full_training(bot: TogetherBot, contract: Contract) -> None:
    view = bot.training_type(bot.open_modal(), "full", "Full (all weights)")
    assert "lora_r" not in _block_ids(view) and ids.block_base_model("full") in _block_ids(view)
    bot.submit_and_confirm(
        view,
        DATASET,
        {ids.block_base_model("full"): SMALL, ids.BLOCK_SLUG: "support-full", "train_on_inputs": "false"},
    )
    [body] = bot.wait(bot.creates)
    assert body["training_type"] == {"type": "Full"}
    assert body["training_method"] == {"method": "sft", "train_on_inputs": False}
    job = _finish(bot, "support-full")
    assert job.status == "completed" and job.spec.option == "full"
    check_sent(bot.together, contract)


def test_dpo(bot: TogetherBot, contract: Contract) -> None:
    view = bot.toggle(bot.toggle(bot.open_modal(), "enable_dpo"), "enable_sft")
    blocks = _block_ids(view)
    assert "dpo_beta" in blocks and "train_on_inputs" not in blocks
    bot.submit_and_confirm(
        view,
        "product-faq-dpo-pairs",
        {ids.block_base_model("lora"): SMALL, ids.BLOCK_SLUG: "faq-dpo", "dpo_beta": "0.2", "rpo_alpha": "0.5"},
    )
    [body] = bot.wait(bot.creates)
    assert body["training_method"] == {"method": "dpo", "dpo_beta": 0.2, "rpo_alpha": 0.5}
    job = _finish(bot, "faq-dpo")
    assert job.status == "completed" and job.spec.methods == ("dpo",)
    check_sent(bot.together, contract)


def test_the_models_limits_are_checked_in_the_form(bot: TogetherBot) -> None:
    catalog = bot.runtime.catalog_for("together")
    bot.wait(lambda: catalog.limits(BIG) is not None and catalog.limits(SMALL) is not None, timeout=10)
    view = bot.training_type(bot.open_modal(), "full", "Full (all weights)")
    answer = bot.submit(view, DATASET, {ids.block_base_model("full"): BIG, ids.BLOCK_SLUG: "too-big", "n_epochs": "50"})
    errors = answer.json()["errors"]
    assert errors["training_type"] == f"Full training is not available for {BIG}: choose LoRA."
    assert errors["n_epochs"] == f"Epochs must be a whole number from 1 to 20 for {BIG}."
    assert not bot.creates()


def test_an_error_job_tells_its_reason(bot: TogetherBot) -> None:
    view = bot.open_modal()
    bot.submit_and_confirm(view, DATASET, {ids.block_base_model("lora"): SMALL, ids.BLOCK_SLUG: "will-fail"})
    bot.wait(bot.creates)
    card = bot.wait(lambda: bot.bot_messages(CHANNEL))[0]
    job = bot.runtime.store.by_slug(bot.slack.team_id, "will-fail")
    assert job is not None and job.model_id is not None
    bot.run_for(STEP_SECONDS * 3, step=5.0)
    bot.together.fail_job(job.model_id, "Training loss diverged (NaN) at step 7")
    bot.run_for(30, step=5.0)
    job = bot.runtime.store.by_slug(bot.slack.team_id, "will-fail")
    assert job is not None and job.lifecycle is Lifecycle.FAILED and job.status == "error" and not job.tracking
    assert job.error_message == "Training loss diverged (NaN) at step 7"
    replies = _replies(bot, card["ts"])
    assert sum("Training loss diverged (NaN) at step 7" in r for r in replies) == 1


def test_a_price_over_the_accounts_limit_is_refused_in_the_confirmation(tmp_path: Path, contract: Contract) -> None:
    bot = TogetherBot(tmp_path, budget=0.0)
    try:
        view = bot.open_modal()
        answer = bot.submit(view, DATASET, {ids.block_base_model("lora"): SMALL, ids.BLOCK_SLUG: "too-dear"})
        assert answer.status_code == 200 and answer.json()["response_action"] == "push", answer.text
        pushed = bot.driver.wait_for_view()
        assert pushed["callback_id"] == ids.VIEW_PRICE_CONFIRM and pushed["previous_view_id"] == view["id"]
        shown = filled_in(bot, pushed["id"])
        assert "submit" not in shown  # no Start button: nothing to confirm
        assert (
            "Together will not start this fine-tune: the estimated price is over your Together account's limit "
            "($0.00)" in view_text(shown)
        )
        assert "*Your account's limit:* $0.00" in view_text(shown) and "*Estimated price:* $" in view_text(shown)
        [estimate] = bot.estimates()
        assert estimate["model"] == SMALL
        # Going back and closing: nothing is created, nothing is posted, no POST /fine-tunes.
        bot.driver.view_closed(pushed["id"])
        bot.run_for(STEP_SECONDS * 2, step=5.0)
        assert not bot.creates() and bot.runtime.store.by_slug(bot.slack.team_id, "too-dear") is None
        assert not bot.bot_messages(CHANNEL)
        assert check_sent(bot.together, contract) > 0  # the estimate's request, against the spec
    finally:
        bot.close()


def test_both_backends_on_the_modal_asks_first_and_each_job_goes_to_its_own(tmp_path: Path) -> None:
    bot = TogetherBot(tmp_path, openpipe=True)
    try:
        view = bot.open_modal()
        assert _block_ids(view)[0] == ids.BLOCK_BACKEND
        assert view["blocks"][0]["element"]["initial_option"]["value"] == "openpipe"
        names = [o["value"] for o in view["blocks"][0]["element"]["options"]]
        assert names == ["openpipe", "together"]
        option = {"text": {"type": "plain_text", "text": "Together"}, "value": "together"}
        view = bot.rebuilt(view, ids.BLOCK_BACKEND, ids.ACTION_BACKEND, selected_option=option)
        assert "training_type" in _block_ids(view) and ids.BLOCK_PROVIDER not in _block_ids(view)
        bot.submit_and_confirm(view, DATASET, {ids.block_base_model("lora"): SMALL, ids.BLOCK_SLUG: "beside-op"})
        bot.wait(bot.creates)
        assert not [r for r in bot.openpipe.requests if r.method == "POST"]
        openpipe_reads = len(bot.openpipe.requests)
        job = _finish(bot, "beside-op")
        assert job.backend == "together" and job.status == "completed"
        assert len(bot.openpipe.requests) == openpipe_reads  # OpenPipe is never read for a Together job
        again = bot.open_modal()
        assert again["blocks"][0]["element"]["initial_option"]["value"] == "together"  # the user's last one
        help_text = json.dumps(bot.driver.slash_command("/finetune", "help").json())
        assert "Together: cancel a running fine-tune" in help_text
    finally:
        bot.close()
