"""`slackbot demo --backend openpipe`: the same conversation against an OpenPipe-compatible service (the local
OpenPipe): its form, a slug refused under the field, POST /models, the card and a reply per status."""

from __future__ import annotations

from typing import Any

from slackbot import ids
from slackbot.backends.openpipe.fields import Provider
from slackbot.demo.offline import STEP_SECONDS, OfflineBot
from slackbot.demo.scenes import heading, open_form, reader_for, request, say, show_errors, the_job
from slackbot.jobs.records import JobRecord

BASE_MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct"
SLUG, WRONG_SLUG = "support-llama-8b", "Support Llama!"
DATASET = "Support tickets 2026-Q3"
FAIL_AT = STEP_SECONDS * 2
FAILURE = "Training loss diverged (NaN) at step 812"


def tell(bot: OfflineBot, *, fail: bool) -> None:
    reader = reader_for(bot)
    bot.openpipe.add_dataset(DATASET, entries=12480)

    view = open_form(bot, reader, "OpenPipe")
    options = bot.driver.block_suggestion(view["id"], ids.ACTION_DATASET, ids.BLOCK_DATASET, "support").json()
    dataset = next(o for o in options["options"] if o["text"]["text"].startswith(DATASET))
    say(f"  ▸ the Dataset picker, typing “support”: {dataset['text']['text']}")

    heading("2 · Start training: a field error, the request")
    values: dict[str, Any] = {
        ids.BLOCK_DATASET: dataset,
        ids.block_base_model(Provider.OPENPIPE): BASE_MODEL,
        ids.BLOCK_SLUG: SLUG,
        ids.BLOCK_SFT_EPOCHS: "3",
        ids.BLOCK_TEMPERATURE: "0.3",
    }
    say(f"  ▸ alice picks {DATASET}, {BASE_MODEL},")
    say(f"    slug “{WRONG_SLUG}”, 3 epochs, temperature 0.3 → Start training")
    show_errors(view, bot.driver.view_submission(view["id"], {**values, ids.BLOCK_SLUG: WRONG_SLUG}).json())
    say(f"  ▸ alice makes the slug {SLUG} → Start training: the form closes, and the bot asks OpenPipe:")
    bot.driver.view_submission(view["id"], values)
    # The job starts after the modal closed (Slack got its answer first): wait for it.
    create = bot.wait(lambda: [r for r in bot.openpipe.requests if r.method == "POST"])
    request("POST", "/api/v1/models", create[0].json)

    def fail_it(job: JobRecord) -> None:
        bot.openpipe.fail_model(job.slug, FAILURE)

    the_job(bot, reader, SLUG, "OpenPipe", limit=STEP_SECONDS * 10, failure=(FAIL_AT, fail_it) if fail else None)
