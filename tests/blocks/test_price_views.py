"""The price confirmation's views and the form they carry in `private_metadata`."""

from __future__ import annotations

import base64
import json
import random
import zlib
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from slackbot import ids
from slackbot.backends.base import PriceQuote
from slackbot.blocks import price
from slackbot.forms import PRIVATE_METADATA_LIMIT, MetadataError, ModalMetadata

META = ModalMetadata(team_id="T1", user_id="U1", channel_id="C1", thread_ts="1700000000.000100", backend="toy")
STATE: dict[str, str | bool] = {"slug": "toy-model", "dataset": "toy-ds-1", "rounds": "3", "enable_sft": True}


def valid(view: dict[str, Any]) -> dict[str, Any]:
    assert view["type"] == "modal" and view["callback_id"] == ids.VIEW_PRICE_CONFIRM
    assert len(view["title"]["text"]) <= 24 and view["close"]["text"] == "Back"
    assert len(view["private_metadata"]) <= PRIVATE_METADATA_LIMIT
    for block in view["blocks"]:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.to_dict()
    return view


def text(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def test_the_form_round_trips_through_the_confirmation() -> None:
    carried = price.carry(META, STATE)
    assert carried is not None and not carried.startswith("z:")
    assert price.read_carried(carried) == (META, STATE)


def test_a_long_form_is_compressed_and_one_too_long_even_then_is_refused() -> None:
    long_state: dict[str, str | bool] = {**STATE, "pruning_rule_ids": "rule-" * 580}
    carried = price.carry(META, long_state)
    assert carried is not None and carried.startswith("z:") and len(carried) <= PRIVATE_METADATA_LIMIT
    assert price.read_carried(carried) == (META, long_state)
    noise = [base64.b64encode(random.Random(n).randbytes(2000)).decode() for n in (1, 2)]  # does not compress
    assert price.carry(META, {**STATE, "pruning_rule_ids": noise[0], "system": noise[1]}) is None


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "{not json",
        json.dumps({"meta": {"team_id": "T1"}, "state": {}}),
        json.dumps({"meta": META.model_dump(mode="json"), "state": {"slug": ["a", "list"]}}),
        json.dumps({"meta": META.model_dump(mode="json")}),
        "z:" + base64.b64encode(zlib.compress(b"{" * 10)).decode(),
        # A bomb: a small payload that would inflate far past anything a form holds.
        "z:" + base64.b64encode(zlib.compress(b'{"state": "' + b"a" * 2_000_000 + b'"}', 9)).decode(),
        "x" * (PRIVATE_METADATA_LIMIT + 1),
    ],
)
def test_anything_else_is_refused_by_name(bad: Any) -> None:
    with pytest.raises(MetadataError):
        price.read_carried(bad)


def test_estimating_then_the_quote_with_a_start_button() -> None:
    carried = price.carry(META, STATE) or ""
    waiting = valid(price.estimating_view("ext-1", carried, "Toy", "toy-model"))
    assert "submit" not in waiting and waiting["external_id"] == "ext-1" and "Estimating the price" in text(waiting)
    quote = PriceQuote(total_usd=1234.5, tokens=1_200_000, epochs=3, limit_usd=5000)
    shown = valid(price.quote_view("ext-1", carried, "Toy", "toy-model", quote))
    assert shown["submit"]["text"] == "Start training" and shown["private_metadata"] == carried
    body = text(shown)
    assert "$1,234.50" in body and "1,200,000" in body and "*Epochs:* 3" in body and "$5,000.00" in body


def test_a_refused_quote_says_why_and_offers_no_start() -> None:
    refused = PriceQuote(total_usd=99, allowed=False, reason="Estimated cost exceeds your <!channel> limit")
    view = valid(price.quote_view("ext-1", "{}", "Toy", "toy-model", refused))
    assert "submit" not in view
    assert "Toy will not start this fine-tune: Estimated cost exceeds your" in text(view)
    assert "<!channel>" not in text(view)  # the service's words are made inert


def test_no_estimate_lets_the_user_start_anyway() -> None:
    unavailable = valid(price.quote_view("e", "{}", "Toy", "m", PriceQuote(available=False)))
    failed = valid(price.estimate_failed_view("e", "{}", "Toy", "m", "it did not answer within 20 seconds"))
    for view in (unavailable, failed):
        assert view["submit"]["text"] == "Start anyway"
    assert "did not answer within 20 seconds" in text(failed)


def test_a_confirmation_no_longer_valid_lists_the_reasons() -> None:
    view = valid(price.not_started_view("{}", {"slug": '"toy-model" was just taken by another job'}))
    assert "submit" not in view and "was just taken" in text(view) and "Go back" in text(view)
