"""The whole bot running for real (see `slackbot.demo.OfflineBot`), plus a few shortcuts for tests."""

from __future__ import annotations

from typing import Any

from slackbot.demo import OPENPIPE_KEY, SIGNING_SECRET, STEP_SECONDS, OfflineBot
from slackbot.sandbox.driver import SlackDriver

__all__ = ["OPENPIPE_KEY", "SIGNING_SECRET", "STEP_SECONDS", "Harness"]


class Harness(OfflineBot):
    def command(self, text: str, driver: SlackDriver | None = None, **kw: Any) -> str:
        """What the user sees for `/finetune <text>`: the ack's text, or else the answer sent after the ack
        through the command's response_url (`list` and `status` answer that way)."""
        before = len(self.slack.calls_to("response_url"))
        response = (driver or self.driver).slash_command("/finetune", text, **kw)
        assert response.status_code == 200, response.text
        if response.text:
            return response.text
        answer = self.slack.wait_for("response_url", before + 1)[before]
        assert answer.args.get("response_type") == "ephemeral", answer.args
        return str(answer.args["text"])

    def open_modal(self, **kw: Any) -> dict[str, Any]:
        response = self.driver.slash_command("/finetune", **kw)
        assert response.status_code == 200, response.text
        return self.driver.wait_for_view()

    def dataset_option(self, view: dict[str, Any], query: str = "") -> list[dict[str, Any]]:
        response = self.driver.block_suggestion(view["id"], "dataset_select", "dataset", query)
        assert response.status_code == 200, response.text
        options: list[dict[str, Any]] = response.json()["options"]
        return options
