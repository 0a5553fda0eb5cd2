"""`DatasetUploads` on the local Slack (files with a download that needs the bot token) and the local OpenPipe:
progress shown only for a slow upload and edited at most every few seconds, the download's refusals said in
plain words, a failed upload reported and nothing left behind."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk import WebClient

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.datasets import OPENPIPE_DATASET_RULES
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.slack_downloads import SlackFiles
from slackbot.services.datasets import DatasetUploads, Where
from tests.datasets.conftest import chat, jsonl

TOKEN = "xoxb-uploads-service-test"
KEY = "opk_uploads_service_test"
HERE = Where("C0GENERAL", None, "U0ALICE")


class Ticking:
    """A clock that moves `step` seconds each time it is read: every batch of the upload "takes" that long."""

    def __init__(self, step: float) -> None:
        self.t, self.step = 0.0, step

    def __call__(self) -> float:
        self.t += self.step
        return self.t


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[LocalSlack, SlackFiles, LocalOpenPipe, OpenPipeBackend]]:
    with (
        LocalSlack(bot_token=TOKEN, post_rate_per_channel=None) as slack,
        SlackFiles(slack) as files,
        LocalOpenPipe(KEY, seed=False) as api,
    ):
        backend = OpenPipeBackend(SecretStr(KEY), api.url, timeout=5.0, sleep=lambda s: None)
        yield slack, files, api, backend
        backend.close()


def uploads(slack: LocalSlack, backend: OpenPipeBackend, tmp_path: Path, **kw: Any) -> DatasetUploads:
    return DatasetUploads(
        slack=WebClient(token=kw.pop("token", TOKEN), base_url=slack.url),
        bot_token=kw.pop("bot_token", TOKEN),
        backends={"openpipe": backend},
        rules_for=lambda _: OPENPIPE_DATASET_RULES,
        workdir=str(tmp_path),
        **kw,
    )


def texts(slack: LocalSlack) -> list[str]:
    return [m.get("text", "") for m in slack.messages(HERE.channel)]


def test_a_slow_upload_shows_its_progress_at_most_every_few_seconds(world: Any, tmp_path: Path) -> None:
    slack, files, _api, backend = world
    data = jsonl(*[chat(("user", f"q{i}"), ("assistant", "a")) for i in range(1000)])
    shared = files.add("big.jsonl", data)
    service = uploads(slack, backend, tmp_path, now=Ticking(1.0))
    sizes = [len(line) + 1 for line in data.splitlines()]
    after = [int(100 * sum(sizes[: 100 * k]) / len(data)) for k in range(11)]  # % done after k batches
    report = service.check_file(shared["id"], "openpipe", HERE)
    assert report is not None and report.ok and report.valid == 1000
    posted = [c.args["text"] for c in slack.calls_to("chat.postMessage")]
    edits = [c.args for c in slack.calls_to("chat.update")]
    # 10 batches, the clock moving 1 s per read: the first shown after 3 s, then at most every 3 s, then done.
    assert posted[-1] == f"Uploading big.jsonl: {after[3]}%"  # posted once, then edited
    assert [e["text"] for e in edits] == [
        f"Uploading big.jsonl: {after[6]}%",
        f"Uploading big.jsonl: {after[9]}%",
        "big is ready",
    ]
    assert {e["ts"] for e in edits} == {(slack.calls_to("chat.postMessage")[-1].response or {}).get("ts")}
    assert texts(slack)[-1] == "big is ready"
    assert list(tmp_path.iterdir()) == []  # the downloaded copy is gone


def test_a_quick_upload_shows_no_progress(world: Any, tmp_path: Path) -> None:
    slack, files, _api, backend = world
    shared = files.add("small.jsonl", jsonl(chat(("user", "q"), ("assistant", "a"))))
    uploads(slack, backend, tmp_path, now=Ticking(0.001)).check_file(shared["id"], "openpipe", HERE)
    assert not [t for t in texts(slack) if t.startswith("Uploading")]
    assert texts(slack)[-1] == "small is ready"


@pytest.mark.parametrize(
    ("kw", "name", "said"),
    [
        ({"bot_token": "xoxb-not-the-bot"}, "a.jsonl",
         "Slack did not let the bot download a.jsonl (is the files:read scope granted?)"),
        ({"max_file_bytes": 10}, "a.jsonl", "a.jsonl is 88 bytes: the bot reads files up to 10 bytes"),
        ({}, "a.csv", "a.csv is not a .jsonl file: share one JSON Lines file (one example per line)"),
        ({}, None, "Slack did not give the file (file_not_found)"),
    ],
)  # fmt: skip
def test_a_file_that_cannot_be_had_is_said(
    world: Any, tmp_path: Path, kw: dict[str, Any], name: str | None, said: str
) -> None:
    slack, files, api, backend = world
    file_id = files.add(name, jsonl(chat(("user", "q"), ("assistant", "a"))))["id"] if name else "F404"
    assert uploads(slack, backend, tmp_path, **kw).check_file(file_id, "openpipe", HERE) is None
    assert texts(slack) == [f"⚠ {said}"]
    assert list(tmp_path.iterdir()) == [] and api.dataset_ids() == []


def test_a_failed_upload_is_reported_and_leaves_nothing(world: Any, tmp_path: Path) -> None:
    slack, files, api, backend = world
    api.inject("POST /datasets/{datasetId}/entries", "status", status=400, message="Input validation failed")
    shared = files.add("t.jsonl", jsonl(chat(("user", "q"), ("assistant", "a"))))
    done: list[Any] = []
    uploads(slack, backend, tmp_path).check_file(shared["id"], "openpipe", HERE, then=lambda d, w: done.append(d))
    last = slack.messages(HERE.channel)[-1]
    assert last["text"] == "Upload of t.jsonl failed"
    assert "the partial dataset was deleted" in json.dumps(last["blocks"])
    assert done == [] and api.dataset_ids() == [] and list(tmp_path.iterdir()) == []


def test_a_file_with_no_valid_line_offers_no_button(world: Any, tmp_path: Path) -> None:
    slack, files, _api, backend = world
    shared = files.add("bad.jsonl", b"{oops\n[1]\n")
    report = uploads(slack, backend, tmp_path).check_file(shared["id"], "openpipe", HERE)
    assert report is not None and report.valid == 0
    blocks = json.dumps(slack.messages(HERE.channel)[-1]["blocks"])
    assert "no line of this file can be used" in blocks and "actions" not in blocks
    assert list(tmp_path.iterdir()) == []
