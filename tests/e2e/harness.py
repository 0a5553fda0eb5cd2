"""The whole bot running for real (see `slackbot.demo.OfflineBot`), plus a few shortcuts for tests."""

from __future__ import annotations

from typing import Any

from slackbot.demo import OPENPIPE_KEY, SIGNING_SECRET, STEP_SECONDS, OfflineBot

__all__ = ["OPENPIPE_KEY", "SIGNING_SECRET", "STEP_SECONDS", "Harness"]


class Harness(OfflineBot):
    def open_modal(self, **kw: Any) -> dict[str, Any]:
        response = self.driver.slash_command("/finetune", **kw)
        assert response.status_code == 200, response.text
        return self.driver.wait_for_view()

    def dataset_option(self, view: dict[str, Any], query: str = "") -> list[dict[str, Any]]:
        response = self.driver.block_suggestion(view["id"], "dataset_select", "dataset", query)
        assert response.status_code == 200, response.text
        options: list[dict[str, Any]] = response.json()["options"]
        return options
