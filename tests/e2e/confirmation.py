"""The price confirmation as a user goes through it over signed HTTP (shared by every backend's end-to-end tests):
wait for the estimate to fill in the pushed view, read it, submit it."""

from __future__ import annotations

import json
from typing import Any
from unittest.mock import patch

import httpx

from slackbot.demo import OfflineBot


def filled_in(h: OfflineBot, view_id: str) -> dict[str, Any]:
    """The confirmation once the estimate (or its failure) replaced "Estimating the price…"."""
    found: dict[str, Any] = h.wait(
        lambda: (v := h.driver.view(view_id)) and "Estimating" not in json.dumps(v["blocks"]) and v
    )
    return found


def view_text(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def confirm(h: OfflineBot, view_id: str) -> tuple[httpx.Response, dict[str, Any]]:
    """Submit the confirmation; also returns the payload sent, for a redelivery."""
    with patch.object(h.driver, "post_payload", wraps=h.driver.post_payload) as sent:
        answer = h.driver.view_submission(view_id)
    payload: dict[str, Any] = sent.call_args.args[0]
    return answer, payload


def jobs_named(h: OfflineBot, slug: str) -> list[Any]:
    return [j for j in h.runtime.store.recent(h.slack.team_id, 50) if j.slug == slug]
