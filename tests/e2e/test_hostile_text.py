"""Hostile text from the service and from users, walked through every surface, over the real HTTP endpoint.

Whatever OpenPipe says (error messages, refusals and their issues, dataset and model names) and whatever users
type (slugs, form values, sub-commands) must reach Slack inert: no broadcast, no mention, no link, no user group,
no secret, within each surface's limit. Surfaces: the card and its edits, thread replies, the refusal with "Edit
and retry" and the form it reopens, command answers (ack and response_url), ephemerals, dataset options, field
errors, help, and the log.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from slackbot import ids
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.demo import BOT_TOKEN
from slackbot.logs import RedactingHandler, configure_logging
from tests.e2e.harness import OPENPIPE_KEY, SIGNING_SECRET, Harness

TOKEN = "xoxb-1111-2222-abcdefABCDEF"
KEY = "opk_live_0123456789abcdef"
HOSTILE = (
    "<!channel> <!here> @here @Channel @everyone <https://evil.example/x|click here> Tom & Jerry <@U0BOB> "
    f"<!subteam^S0MLTEAM> `tick` *bold*\n> fake quote\n{TOKEN} {KEY} {SIGNING_SECRET} Bearer sekrit-value"
)
LONG = HOSTILE + " " + "w" * 6000
SECRETS = (TOKEN, KEY, SIGNING_SECRET, "sekrit-value", BOT_TOKEN, OPENPIPE_KEY)
# The only `<…>` the bot writes itself: the requester's mention, channel links, dates.
OURS = re.compile(r"<(@U0ALICE|#[CDG][A-Z0-9]+|!date\^\d+\^[^|<>]*\|[^<>]*)>")
BROADCAST = re.compile(r"@(here|channel|everyone)\b", re.IGNORECASE)


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{where}: a secret got through: {text[:300]!r}"


def assert_inert_mrkdwn(text: str, where: str) -> None:
    assert_no_secret(text, where)
    rest = OURS.sub("", text)
    assert "<" not in rest, f"{where}: an entity Slack would parse: {text[:300]!r}"
    # A raw `>` only as our own quote marker at a line's start.
    assert ">" not in re.sub(r"(?m)^> ", "", rest), f"{where}: a raw >: {text[:300]!r}"
    assert re.search(r"&(?!amp;|lt;|gt;)", rest) is None, f"{where}: a raw &: {text[:300]!r}"
    assert BROADCAST.search(text) is None, f"{where}: a broadcast: {text[:300]!r}"


def walk(node: object, where: str, found: list[str]) -> None:
    """Check every text object in a block tree; `found` collects what was checked (so a test can't pass empty)."""
    if isinstance(node, list):
        for item in node:
            walk(item, where, found)
        return
    if not isinstance(node, dict):
        return
    kind, text = node.get("type"), node.get("text")
    if kind == "mrkdwn" and isinstance(text, str):
        assert_inert_mrkdwn(text, where)
        found.append(text)
    elif kind == "plain_text" and isinstance(text, str):
        assert_no_secret(text, where)
        found.append(text)
    for value in node.values():
        walk(value, where, found)


def check_message(message: dict[str, Any], where: str, found: list[str]) -> None:
    assert_inert_mrkdwn(str(message.get("text") or ""), where)
    found.append(str(message.get("text") or ""))
    walk(message.get("blocks") or [], where, found)


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    configure_logging("INFO", "json", [], stream=stream)  # the known secrets come from the running bot's settings
    try:
        yield stream
    finally:
        for ours in [h for h in root.handlers if isinstance(h, RedactingHandler)]:
            root.removeHandler(ours)
        for handler in saved[0]:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(saved[1])


def _made_elsewhere(h: Harness, slug: str, base_model: str) -> None:
    other = OpenPipeBackend(SecretStr(OPENPIPE_KEY), h.openpipe.url)
    try:
        dataset = h.openpipe.add_dataset("Elsewhere", entries=3)
        other.create(openpipe_spec(dataset_id=dataset, slug=slug, provider=Provider.OPENPIPE, base_model=base_model))
    finally:
        other.close()


def test_hostile_text_is_inert_on_every_surface(tmp_path: Path, logged: io.StringIO) -> None:
    h = Harness(tmp_path)
    found: list[str] = []
    try:
        _walk_every_surface(h, found)
    finally:
        h.close()
    # Every surface was reached (each check above also saw the hostile text's remains, not an empty string).
    assert sum("[redacted]" in text for text in found) >= 10
    assert sum("&lt;!channel&gt;" in text for text in found) >= 8
    log = logged.getvalue()
    assert_no_secret(log, "log")
    assert "dataset list failed" in log and "[redacted]" in log


def _walk_every_surface(h: Harness, found: list[str]) -> None:
    # --- the dataset picker, the form's field errors ---------------------------------------------------
    h.openpipe.inject("GET /datasets", "status", status=400, message=LONG, times=None)
    view = h.open_modal()
    failed = h.dataset_option(view, "")  # the failure is logged (redacted) and answered with a readable option
    assert failed[0]["value"] == ids.OPTION_ERROR_VALUE
    h.openpipe.clear_faults()
    h.runtime.catalog.invalidate_datasets()
    h.openpipe.add_dataset(LONG, entries=7)
    h.openpipe.add_dataset(HOSTILE, entries=5)
    options = h.dataset_option(view, "")
    assert {o["text"]["text"].rsplit(" · ", 1)[-1] for o in options} >= {"5 entries", "7 entries"}
    walk(options, "dataset options", found)
    assert all(len(o["text"]["text"]) <= 75 for o in options)
    walk(h.dataset_option(view, TOKEN), "no-match option", found)
    hostile_dataset = next(o for o in options if o["text"]["text"].endswith("5 entries"))

    values: dict[str, Any] = {
        ids.BLOCK_DATASET: hostile_dataset,
        ids.block_base_model(Provider.OPENPIPE): "meta-llama/Meta-Llama-3.1-8B-Instruct",
        ids.BLOCK_SLUG: "<!here>",
        ids.BLOCK_PRUNING_RULES: f"{TOKEN}.x {SIGNING_SECRET}!",
    }
    errors = h.driver.view_submission(view["id"], values).json()["errors"]
    assert set(errors) >= {ids.BLOCK_SLUG, ids.BLOCK_PRUNING_RULES}
    for block_id, message in errors.items():
        assert_no_secret(message, f"field error {block_id}")
        found.append(message)

    # --- the card, the failure reply and the card's edit -------------------------------------------------
    values.update({ids.BLOCK_SLUG: "hostile-ds", ids.BLOCK_PRUNING_RULES: ""})
    assert h.driver.view_submission(view["id"], values).status_code == 200
    card = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
    h.run_for(2)
    h.openpipe.fail_model("hostile-ds", LONG)
    h.run_for(30, step=5)
    h.wait(lambda: len(h.slack.thread("C0GENERAL", card["ts"])) >= 1)

    # --- command answers: status, list, usage, slugs typed by users --------------------------------------
    status = h.command("status hostile-ds")
    assert "&lt;!channel&gt;" in status
    for text in ("status hostile-ds", "list", "help", f"status {TOKEN}", "status <!here>", "track <!channel>"):
        answer = h.command(text)
        if answer.startswith("{"):  # an ack with blocks (help)
            check_message(json.loads(answer), f"/finetune {text}", found)
        else:
            assert_inert_mrkdwn(answer, f"/finetune {text}")
            found.append(answer)
    usage = h.command(" ".join(HOSTILE.split()))
    assert_inert_mrkdwn(usage, "usage")
    found.append(usage)

    # --- ephemerals: a lookup the service refuses with hostile words --------------------------------------
    h.openpipe.inject("GET /models/{slug}", "status", status=400, message=LONG, issues=[HOSTILE], times=1)
    assert "Looking up" in h.command("track refused-lookup")
    h.wait(lambda: [c for c in h.slack.calls_to("chat.postEphemeral") if "refused-lookup" in str(c.args)])

    # --- a model made elsewhere with a hostile base model, followed until deployed ---------------------------
    _made_elsewhere(h, "elsewhere-model", HOSTILE.replace("\n", " "))
    h.command("track elsewhere-model", channel_id="C0RANDOM")
    h.wait(lambda: h.bot_messages("C0RANDOM"))
    h.openpipe.set_status("elsewhere-model", "DEPLOYED")
    h.run_for(30, step=5)
    h.wait(lambda: len(h.bot_messages("C0RANDOM")) >= 2)

    # --- a refusal with "Edit and retry", and the form it reopens ----------------------------------------
    retry_view = h.open_modal()
    h.openpipe.inject(
        "POST /models",
        "status",
        status=400,
        message=LONG,
        issues=[HOSTILE, "slug: " + HOSTILE, "trainingConfig.sft_hyperparameters.num_epochs: " + LONG],
        times=1,
    )
    values[ids.BLOCK_SLUG] = "refused-create"
    assert h.driver.view_submission(retry_view["id"], values).status_code == 200
    notice = h.wait(lambda: [m for m in h.bot_messages("C0GENERAL") if "refused-create" in m["text"]])[0]
    h.run_for(2)
    opened = len(h.slack.calls_to("views.open"))
    h.driver.message_block_action("C0GENERAL", notice["ts"], ids.ACTION_EDIT_RETRY, value=None)
    h.slack.wait_for("views.open", opened + 1)

    # --- each surface was reached, with the hostile words in it ---------------------------------------------
    def shown(texts: list[str]) -> bool:
        return any("&lt;!channel&gt;" in t for t in texts)

    thread = h.slack.thread("C0GENERAL", card["ts"])
    assert shown([json.dumps(r["blocks"]) for r in thread]), "the ERROR reply"
    final_card = next(m for m in h.slack.messages("C0GENERAL") if m["ts"] == card["ts"])
    assert shown([json.dumps(final_card["blocks"])]), "the card's error"
    assert "&lt;!channel&gt;" in json.dumps(final_card["blocks"]) and "7 entries" not in final_card["text"]
    deployed = [m for m in h.bot_messages("C0RANDOM") if "Call it as" in json.dumps(m["blocks"])]
    assert len(deployed) >= 2, "the deployed card and reply, each saying how to call the model"
    assert shown([json.dumps(m["blocks"]) for m in h.bot_messages("C0RANDOM")]), "the hostile base model"
    lookups = [
        str(c.args.get("text")) for c in h.slack.calls_to("chat.postEphemeral") if "refused-lookup" in str(c.args)
    ]
    assert shown(lookups), "the failed lookup's ephemeral"
    assert shown([notice["text"]]), "the refusal"

    # --- walk everything Slack was sent -------------------------------------------------------------------
    for channel in ("C0GENERAL", "C0RANDOM"):
        for message in h.slack.messages(channel):
            check_message(message, f"message in {channel}", found)
            for edit in message["edits"]:
                check_message(edit, f"earlier version of a message in {channel}", found)
    for call in h.slack.calls_to("chat.postEphemeral") + h.slack.calls_to("response_url"):
        check_message(call.args, call.method, found)
    reopened = [c.args["view"] for c in h.slack.calls_to("views.open")]
    for view_json in reopened:
        walk(json.loads(view_json) if isinstance(view_json, str) else view_json, "Edit and retry form", found)
    assert "&lt;!channel&gt;" in json.dumps(reopened[-1]), "the refusal is shown in the form"
