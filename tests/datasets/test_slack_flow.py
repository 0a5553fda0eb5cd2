"""A dataset from a file, through Slack: the bot's real listeners behind signed HTTP (the e2e harness), the local
Slack with its files (`files.info`, a download that needs the bot token) and the local OpenPipe.

The /finetune form submitted with a .jsonl file: the file is checked, reported in a thread, uploaded, and the job
starts with the new dataset, its card in that thread. A file with errors waits for "Upload only the valid lines".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slackbot import ids
from slackbot.backends.openpipe.fields import Provider
from slackbot.sandbox.slack_downloads import SlackFiles
from slackbot.sandbox.slack_payloads import submission_state
from tests.datasets.conftest import GOOD_CHAT, chat, jsonl
from tests.e2e.harness import Harness

CHANNEL = "C0GENERAL"
MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(tmp_path)
    # Slack tolerates short bursts: the check's messages (start, report, outcome, card) come close together.
    harness.slack.workspace.burst = 10
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture
def files(h: Harness) -> Iterator[SlackFiles]:
    with SlackFiles(h.slack) as store:
        yield store


def lines(n: int) -> list[dict[str, Any]]:
    return [chat(("user", f"question {i}"), ("assistant", f"answer {i}")) for i in range(n)]


def submit(h: Harness, file: dict[str, Any] | None, slug: str, **extra: Any) -> tuple[dict[str, Any], Any]:
    view = h.open_modal()
    values: dict[str, Any] = {ids.block_base_model(Provider.OPENPIPE): MODEL, ids.BLOCK_SLUG: slug, **extra}
    state = submission_state(view["blocks"], h.slack.typed_state(view["id"]), values)
    if file is not None:
        state[ids.BLOCK_DATASET_FILE] = {ids.ACTION_DATASET_FILE: {"type": "file_input", "files": [file]}}
    return view, h.driver.view_submission(view["id"], raw_state=state)


def test_the_modal_offers_a_file_for_a_backend_that_uploads(h: Harness) -> None:
    view = h.open_modal()
    block_ids = [b.get("block_id") for b in view["blocks"]]
    at = block_ids.index(ids.BLOCK_DATASET)
    assert block_ids[at + 1] == ids.BLOCK_DATASET_FILE
    picker, file_input = view["blocks"][at], view["blocks"][at + 1]
    assert picker["optional"] is True  # a file may stand in for it
    assert file_input["element"] == {
        "type": "file_input",
        "action_id": ids.ACTION_DATASET_FILE,
        "filetypes": ["jsonl"],
        "max_files": 1,
    }


def test_a_valid_file_becomes_the_jobs_dataset(h: Harness, files: SlackFiles) -> None:
    shared = files.add("support-tickets.jsonl", jsonl(*lines(150)))
    _, answer = submit(h, shared, "from-a-file")
    assert answer.status_code == 200 and answer.content in (b"", b"{}"), answer.text

    posts = h.wait(lambda: [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"], 10)
    dataset_id = posts[0].json["datasetId"]
    assert posts[0].json["slug"] == "from-a-file"
    assert h.openpipe.dataset_entries(dataset_id) == lines(150)
    assert files.downloads == [(shared["id"], True)]  # with the bot token

    h.wait(lambda: len(h.bot_messages(CHANNEL)) >= 3)
    h.tick()  # the notifier posts the job's card
    parent, *replies = h.wait(lambda: (m := h.bot_messages(CHANNEL)) and len(m) >= 4 and m)
    assert parent["text"] == "Checking `support-tickets.jsonl` for OpenPipe…"
    assert all(m.get("thread_ts") == parent["ts"] for m in replies)  # the report, the outcome and the card
    assert "150 lines checked for OpenPipe (SFT): 150 valid, 0 with errors" in replies[0]["text"]
    assert "Every line is valid" in json.dumps(replies[0]["blocks"])
    assert replies[1]["text"] == "support-tickets is ready"
    assert "from-a-file" in replies[2]["text"]  # the job's card, and its updates, in the file's thread


def test_a_file_with_errors_waits_for_upload_only_the_valid_lines(h: Harness, files: SlackFiles) -> None:
    good = lines(3)
    data = jsonl(good[0], chat(("user", "Hi"), ("bot", "<!channel> hey")), good[1], "{oops", good[2])
    shared = files.add("mixed.jsonl", data)
    submit(h, shared, "valid-only")

    def the_report() -> dict[str, Any] | None:
        return next((m for m in h.bot_messages(CHANNEL) if "with errors" in m.get("text", "")), None)

    report = h.wait(the_report, 10)
    shown = json.dumps(report["blocks"])
    assert "5 lines checked for OpenPipe (SFT): 3 valid, 2 with errors" in shown
    assert "line 2: message 2 has role" in shown and "line 4: is not valid JSON" in shown
    assert "<!channel>" not in shown  # the file's text cannot broadcast
    assert not [r for r in h.openpipe.requests if r.path == "/datasets" and r.method == "POST"]  # nothing uploaded

    bob = h.driver.message_block_action(CHANNEL, report["ts"], ids.ACTION_UPLOAD_VALID_ONLY, user_id="U0BOB")
    assert bob.status_code == 200
    said = h.wait(lambda: h.slack.calls_to("chat.postEphemeral"))
    assert said[-1].args["user"] == "U0BOB" and "Only <@U0ALICE>" in said[-1].args["text"]

    alice = h.driver.message_block_action(CHANNEL, report["ts"], ids.ACTION_UPLOAD_VALID_ONLY)
    assert alice.status_code == 200
    posts = h.wait(lambda: [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"], 10)
    assert h.openpipe.dataset_entries(posts[0].json["datasetId"]) == good
    assert posts[0].json["slug"] == "valid-only"

    again = h.driver.message_block_action(CHANNEL, report["ts"], ids.ACTION_UPLOAD_VALID_ONLY)
    assert again.status_code == 200
    gone = h.wait(lambda: [c for c in h.slack.calls_to("chat.postEphemeral") if c.args["user"] == "U0ALICE"])
    assert "no longer waiting" in gone[-1].args["text"]
    assert len([r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"]) == 1


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("notes.txt", {}, "notes.txt is not a .jsonl file."),
        ("data.jsonl", {"slug": "x"}, None),  # the rest of the form is checked before the ack
    ],
)
def test_the_form_is_checked_before_the_ack(
    h: Harness, files: SlackFiles, name: str, extra: dict[str, Any], message: str | None
) -> None:
    shared = files.add(name, jsonl(GOOD_CHAT))
    _, answer = submit(h, shared, extra.get("slug", "good-slug"))
    errors = answer.json()["errors"]
    if message is not None:
        assert errors == {ids.BLOCK_DATASET_FILE: message}
    else:
        assert list(errors) == [ids.BLOCK_SLUG]
    assert files.downloads == []


def test_a_file_and_a_dataset_together_are_refused(h: Harness, files: SlackFiles) -> None:
    shared = files.add("data.jsonl", jsonl(GOOD_CHAT))
    view = h.open_modal()
    option = h.dataset_option(view)[0]
    _, answer = submit(h, shared, "both-given", **{ids.BLOCK_DATASET: option})
    assert answer.json()["errors"] == {ids.BLOCK_DATASET_FILE: "Choose a dataset above or upload a file, not both."}


def test_neither_a_file_nor_a_dataset_is_refused_under_the_picker(h: Harness) -> None:
    _, answer = submit(h, None, "no-data")
    errors = answer.json()["errors"]
    assert list(errors) == [ids.BLOCK_DATASET]  # the form's own check: the picker is optional only for Slack


def test_the_shortcut_on_a_message_carrying_a_jsonl_uses_that_file(h: Harness, files: SlackFiles) -> None:
    shared = files.add("from-the-thread.jsonl", jsonl(*lines(20)))
    other = files.add("notes.txt", b"not a dataset", filetype="text")
    ts = h.slack.add_message(CHANNEL, "Here is the data for the support model")
    answer = h.driver.message_shortcut(ids.SHORTCUT_FROM_THREAD, message_ts=ts, files=[other, shared])
    assert answer.status_code == 200, answer.text
    view = h.driver.wait_for_view()
    file_block = next(b for b in view["blocks"] if b.get("block_id") == ids.BLOCK_DATASET_FILE)
    assert "from-the-thread.jsonl from the message" in file_block["hint"]["text"]

    # Neither the picker nor the file input used: the message's file is the dataset.
    values: dict[str, Any] = {ids.block_base_model(Provider.OPENPIPE): MODEL, ids.BLOCK_SLUG: "from-the-thread"}
    state = submission_state(view["blocks"], h.slack.typed_state(view["id"]), values)
    reply = h.driver.view_submission(view["id"], raw_state=state)
    assert reply.status_code == 200 and reply.content in (b"", b"{}"), reply.text
    posts = h.wait(lambda: [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"], 10)
    assert posts[0].json["slug"] == "from-the-thread"
    assert h.openpipe.dataset_entries(posts[0].json["datasetId"]) == lines(20)
    assert files.downloads == [(shared["id"], True)]


def test_a_dataset_picked_wins_over_the_messages_file(h: Harness, files: SlackFiles) -> None:
    shared = files.add("ignored.jsonl", jsonl(*lines(5)))
    ts = h.slack.add_message(CHANNEL, "Old data, do not use")
    h.driver.message_shortcut(ids.SHORTCUT_FROM_THREAD, message_ts=ts, files=[shared])
    view = h.driver.wait_for_view()
    dataset = h.dataset_option(view)[0]
    values: dict[str, Any] = {
        ids.block_base_model(Provider.OPENPIPE): MODEL,
        ids.BLOCK_SLUG: "picked-one",
        ids.BLOCK_DATASET: dataset,
    }
    state = submission_state(view["blocks"], h.slack.typed_state(view["id"]), values)
    reply = h.driver.view_submission(view["id"], raw_state=state)
    assert reply.status_code == 200, reply.text
    posts = h.wait(lambda: [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"], 10)
    assert posts[0].json["datasetId"] == dataset["value"] and files.downloads == []
