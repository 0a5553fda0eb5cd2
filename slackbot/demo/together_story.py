"""The default story: a LoRA fine-tune on Together AI, from `/finetune` to the model to call (or, with `fail`, the
service's reason it stopped), against the local Slack and Together on the bot's manual clock."""

from __future__ import annotations

from typing import Any

from slackbot import ids
from slackbot.demo.offline import STEP_SECONDS, TogetherOfflineBot
from slackbot.demo.scenes import Thread, follow, heading, label, reader_for, request, say, show_card
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

    heading("1 · /finetune opens Together's form")
    say("#general — @alice types:  /finetune")
    bot.driver.slash_command("/finetune")
    view = bot.driver.wait_for_view()
    for line in reader.form(view):
        say(f"  {line}")
    files = bot.driver.block_suggestion(view["id"], ids.ACTION_DATASET, ids.BLOCK_DATASET, "").json()["options"]
    say("  ▸ the Dataset picker lists the Together files to train on:")
    for option in files:
        say(f"      {option['text']['text']}")

    heading("2 · Start training: a field error, the price, the request")
    dataset = next(o for o in files if o["text"]["text"].startswith(DATASET))
    values: dict[str, Any] = {
        ids.BLOCK_DATASET: dataset,
        ids.block_base_model("lora"): BASE_MODEL,
        ids.BLOCK_SLUG: SLUG,
        "lora_r": "32",
        "n_epochs": EPOCHS,
    }
    say(f"  ▸ alice picks {DATASET}, LoRA, {BASE_MODEL},")
    say(f"    slug {SLUG}, LoRA rank 32, {TOO_MANY_EPOCHS} epochs → Start training")
    wrong = bot.driver.view_submission(view["id"], {**values, "n_epochs": TOO_MANY_EPOCHS}).json()
    for block_id, message in wrong.get("errors", {}).items():
        say(f"  ▸ the form stays open; under “{label(view, block_id)}” it says: {message}")
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

    heading("3 · The status card in #general")
    job = bot.wait(lambda: (j := bot.runtime.store.by_slug(bot.slack.team_id, SLUG)) and j.card_ts and j)
    say("#general — finetune (bot):")
    show_card(bot, reader, job.card_ts)

    heading("4 · The card's thread while Together trains")
    thread = Thread(bot, reader, job)
    job_id = job.model_id
    assert job_id is not None
    at = {FAIL_AT: lambda: bot.together.fail_job(job_id, FAILURE)} if fail else {}
    follow(bot, thread, step=STEP_SECONDS / 2, limit=STEP_SECONDS * 12, at=at)

    heading("5 · The card at the end")
    say("#general — finetune (bot), the same message, updated:")
    show_card(bot, reader, job.card_ts)
