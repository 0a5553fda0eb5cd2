"""The default story: a LoRA fine-tune on Together AI, from `/finetune` to the model to call (or, with `fail`, the
service's reason it stopped), against the local Slack and Together on the bot's manual clock."""

from __future__ import annotations

from typing import Any

from slackbot import ids
from slackbot.demo.offline import STEP_SECONDS, TogetherOfflineBot
from slackbot.demo.scenes import heading, open_form, reader_for, request, say, show_errors, the_job
from slackbot.jobs.records import JobRecord
from slackbot.sandbox.together_api import SUPPORTED_MODELS

BASE_MODEL = SUPPORTED_MODELS[0]
SLUG = "support-lora"
DATASET = "support-tickets-2026-q3.jsonl"
TOO_MANY_EPOCHS, EPOCHS = "30", "3"
# The local Together trains for three steps of STEP_SECONDS after two of pending and queued; halfway through:
FAIL_AT = STEP_SECONDS * 3.5
FAILURE = "Training loss diverged (NaN) at step 7"  # the step the local Together's training is at by FAIL_AT


def tell(bot: TogetherOfflineBot, *, fail: bool) -> None:
    reader = reader_for(bot)
    # As a started bot does (Runtime.start): the catalogue is read ahead, so the form knows each model's limits.
    catalog = bot.runtime.catalog_for("together")
    catalog.warm()
    bot.wait(lambda: catalog.limits(BASE_MODEL) is not None, timeout=10)

    view = open_form(bot, reader, "Together")
    files = bot.driver.block_suggestion(view["id"], ids.ACTION_DATASET, ids.BLOCK_DATASET, "").json()["options"]
    say("  ▸ the Dataset picker lists the Together files to train on:")
    for option in files:
        say(f"      {option['text']['text']}")

    heading("2 · Start training: a field error, the price, the request")
    values: dict[str, Any] = {
        ids.BLOCK_DATASET: next(o for o in files if o["text"]["text"].startswith(DATASET)),
        ids.block_base_model("lora"): BASE_MODEL,
        ids.BLOCK_SLUG: SLUG,
        "lora_r": "32",
        "n_epochs": EPOCHS,
    }
    say(f"  ▸ alice picks {DATASET}, LoRA, {BASE_MODEL},")
    say(f"    slug {SLUG}, LoRA rank 32, {TOO_MANY_EPOCHS} epochs → Start training")
    show_errors(view, bot.driver.view_submission(view["id"], {**values, "n_epochs": TOO_MANY_EPOCHS}).json())
    say(f"  ▸ alice makes it {EPOCHS} epochs → Start training")
    answer = bot.driver.view_submission(view["id"], values).json()
    pushed = bot.driver.wait_for_view()
    waiting = reader.blocks(answer["view"]["blocks"])[-1]
    say(f"  ▸ Slack shows “{pushed['title']['text']}” at once ({waiting}); Together's estimate fills it in:")
    shown = bot.wait(lambda: (v := bot.driver.view(pushed["id"])) and v["hash"] != pushed["hash"] and v)
    for line in reader.form(shown):
        say(f"    {line}")
    say("  ▸ alice clicks Start training: the form closes, and only now the bot asks Together to start the job:")
    bot.driver.view_submission(pushed["id"])
    create = bot.wait(lambda: [r for r in bot.together.requests if (r.method, r.path) == ("POST", "/fine-tunes")])
    request("POST", "/v1/fine-tunes", create[0].json)

    def fail_it(job: JobRecord) -> None:
        assert job.model_id is not None
        bot.together.fail_job(job.model_id, FAILURE)

    the_job(bot, reader, SLUG, "Together", limit=STEP_SECONDS * 12, failure=(FAIL_AT, fail_it) if fail else None)
