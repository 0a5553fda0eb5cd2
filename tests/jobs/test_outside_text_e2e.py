"""Outside text of any length goes through the whole bot (signed requests, local Slack and OpenPipe, SQLite and
PostgreSQL): a 10,000-character dataset name and a 500-character status OpenPipe does not document."""

from __future__ import annotations

from pathlib import Path

from slackbot import ids
from slackbot.backends.openpipe.fields import Provider
from tests.e2e.harness import Harness


def test_long_dataset_name_and_unknown_long_status_go_through(db_url: str, tmp_path: Path) -> None:
    h = Harness(tmp_path, database_url=db_url)
    try:
        name = "Support tickets " + "x" * (10_000 - len("Support tickets "))
        h.openpipe.add_dataset(name, entries=12)
        view = h.open_modal()
        options = h.dataset_option(view, "support")
        dataset = next(o for o in options if o["text"]["text"].startswith("Support tickets"))
        values = {
            ids.BLOCK_DATASET: dataset,
            ids.block_base_model(Provider.OPENPIPE): "meta-llama/Meta-Llama-3.1-8B-Instruct",
            ids.BLOCK_SLUG: "long-outside-text",
        }
        answer = h.driver.view_submission(view["id"], values)
        assert answer.status_code == 200 and not answer.content, answer.text
        card = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
        job = h.runtime.store.by_slug(h.slack.team_id, "long-outside-text")
        assert job is not None and job.dataset_name == name  # kept in full
        assert [r.path for r in h.openpipe.requests if r.method == "POST"] == ["/models"]

        odd = "RETRAINING_" + "Q" * (500 - len("RETRAINING_"))
        h.openpipe.set_status("long-outside-text", odd)
        h.run_for(10, step=5)
        job = h.runtime.store.by_slug(h.slack.team_id, "long-outside-text")
        assert job is not None and job.status == odd
        replies = h.wait(lambda: [m for m in h.slack.thread("C0GENERAL", card["ts"]) if "RETRAINING_" in m["text"]])
        assert len(replies) == 1
    finally:
        h.close()
