"""The whole bot with Together on (alone, or beside OpenPipe), driven over signed HTTP like the OpenPipe flows:
the local Together shares the bot's manual clock, so a test moves training along without sleeping."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slackbot import ids
from slackbot.blocks.price import START
from slackbot.runtime import Runtime
from slackbot.sandbox.together_api import LocalTogether
from tests.e2e.confirmation import confirm, filled_in, view_text
from tests.e2e.harness import STEP_SECONDS, Harness

TOGETHER_KEY = "tgp_e2e_secret_key_0123456789"


class TogetherBot(Harness):
    def __init__(self, db_dir: Path, *, openpipe: bool = False, budget: float = 100.0, **settings: Any) -> None:
        self.together = LocalTogether(TOGETHER_KEY, step_seconds=STEP_SECONDS, budget=budget).start()
        values: dict[str, Any] = {
            "together_api_key": TOGETHER_KEY,
            "together_base_url": self.together.url,
            "together_timeout_seconds": 5.0,
        }
        if not openpipe:
            values["openpipe_api_key"] = None
        try:
            super().__init__(db_dir, **values, **settings)
        except BaseException:
            self.together.stop()
            raise
        self.together.clock = self.clock
        # As a started bot does (Runtime.start): the catalogue is read ahead, so the first modal lists base models.
        catalog = self.runtime.catalog_for("together")
        catalog.warm()
        self.wait(lambda: catalog.base_models(None, wait=0.5), timeout=10)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.together.stop()

    def rebuilt(self, view: dict[str, Any], block_id: str, action_id: str, **choice: Any) -> dict[str, Any]:
        """Act on a control that redraws the modal, and return the redrawn view."""
        old = view["hash"]
        answer = self.driver.block_action(view["id"], block_id, action_id, **choice)
        assert answer.status_code == 200, answer.text
        updated: dict[str, Any] = self.wait(lambda: (v := self.driver.view(view["id"]))["hash"] != old and v)
        return updated

    def toggle(self, view: dict[str, Any], field_id: str) -> dict[str, Any]:
        block = next(b for b in view["blocks"] if b.get("block_id") == field_id)
        on = bool(block["element"].get("initial_options"))
        value = [] if on else list(block["element"]["options"])
        return self.rebuilt(view, field_id, f"{field_id}_toggle", value=value)

    def training_type(self, view: dict[str, Any], value: str, label: str) -> dict[str, Any]:
        option = {"text": {"type": "plain_text", "text": label}, "value": value}
        return self.rebuilt(view, "training_type", "training_type_select", selected_option=option)

    def submit(self, view: dict[str, Any], dataset: str, values: dict[str, Any]) -> Any:
        option = next(o for o in self.dataset_option(view) if o["text"]["text"].startswith(dataset))
        return self.driver.view_submission(view["id"], {ids.BLOCK_DATASET: option, **values})

    def submit_and_confirm(self, view: dict[str, Any], dataset: str, values: dict[str, Any]) -> dict[str, Any]:
        """Start a fine-tune as a user does now that Together quotes its price: the form's submit pushes the
        confirmation (nothing created yet), the estimate fills it in, its Start training closes the whole stack
        and only then is the job created. Returns the confirmation as the user saw it."""
        creates = len(self.creates())
        answer = self.submit(view, dataset, values)
        assert answer.status_code == 200 and answer.json()["response_action"] == "push", answer.text
        pushed = self.driver.wait_for_view()
        assert pushed["callback_id"] == ids.VIEW_PRICE_CONFIRM and pushed["previous_view_id"] == view["id"]
        shown = filled_in(self, pushed["id"])
        assert shown["submit"]["text"] == START and "*Estimated price:* $" in view_text(shown), shown
        assert len(self.creates()) == creates  # nothing is created before the user confirms
        started, _ = confirm(self, pushed["id"])
        assert started.status_code == 200 and started.json() == {"response_action": "clear"}, started.text
        assert view["id"] not in self.slack.views and pushed["id"] not in self.slack.views
        return shown

    def estimates(self) -> list[dict[str, Any]]:
        return [r.json for r in self.together.requests if (r.method, r.path) == ("POST", "/fine-tunes/estimate-price")]

    def creates(self) -> list[dict[str, Any]]:
        return [r.json for r in self.together.requests if (r.method, r.path) == ("POST", "/fine-tunes")]


def told_keys(bot: TogetherBot, job_id: int) -> list[str]:
    """The job's outbox keys in order, without its card-redraw row: that one row per job (reused each time the card
    is redrawn with newer details) is no message told in the thread."""
    keys = [r.dedupe_key for r in bot.runtime.store.outbox_for_job(job_id)]
    assert keys.count("card:details") <= 1, keys
    return [k for k in keys if k != "card:details"]


def live(bot: TogetherBot, runtimes: list[Runtime], seconds: float, step: float = 5.0, *, feed: bool = False) -> None:
    """Let bot time pass with these processes' schedulers ticking: each runs the tracker, the feed (with `feed`),
    then the notifier."""
    elapsed = 0.0
    while elapsed < seconds:
        bot.clock.advance(step)
        elapsed += step
        for runtime in runtimes:
            runtime.tracker.poll_once()
            if feed:
                runtime.feed.poll_once()
            runtime.notifier.deliver_due()
