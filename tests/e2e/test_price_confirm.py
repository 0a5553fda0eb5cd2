"""The price confirmation end to end, over signed HTTP: the real bot with the local Slack and the toy backend
declared with price estimates. The form's submit pushes "Estimating the price…" in its ack (never waiting for the
estimate), the estimate fills it in, and the confirmation's submit records and starts exactly one job."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from slackbot import ids
from slackbot.backends.base import FineTuneSpec, PriceQuote, ServerError
from slackbot.backends.registry import registered
from tests.e2e.confirmation import confirm, filled_in, jobs_named, view_text
from tests.e2e.harness import Harness
from tests.e2e.test_several_backends import _pick_backend
from tests.stand_ins.toy import ToyBackend, toy_declaration


@pytest.fixture
def priced(tmp_path: Path) -> Iterator[tuple[Harness, ToyBackend]]:
    toy = ToyBackend()
    with registered(toy_declaration(price_estimate=True, cancel=True)):
        h = Harness(tmp_path, backends=[toy])
        try:
            yield h, toy
        finally:
            h.close()


def submit_form(h: Harness, slug: str = "priced-one") -> tuple[httpx.Response, dict[str, Any]]:
    view = _pick_backend(h, h.open_modal(), "toy", "Toy")
    dataset = next(o for o in h.dataset_option(view) if o["text"]["text"].startswith("Toy bricks"))
    values = {
        ids.BLOCK_DATASET: dataset,
        ids.block_base_model("toy"): "toy-base-2",
        ids.BLOCK_SLUG: slug,
        "rounds": "4",
    }
    return h.driver.view_submission(view["id"], values), view


def test_push_then_estimate_then_start_creates_one_job_even_when_redelivered(
    priced: tuple[Harness, ToyBackend],
) -> None:
    h, toy = priced
    answer, form = submit_form(h)
    assert answer.status_code == 200 and answer.json()["response_action"] == "push"
    pushed = h.driver.wait_for_view()
    assert pushed["callback_id"] == ids.VIEW_PRICE_CONFIRM and pushed["previous_view_id"] == form["id"]
    shown = filled_in(h, pushed["id"])
    assert "*Estimated price:* $4.20" in view_text(shown) and "*Tokens:* 120,000" in view_text(shown)
    assert shown["submit"]["text"] == "Start training" and shown["close"]["text"] == "Back"
    assert "estimate:priced-one" in toy.calls
    # Nothing is created before the user confirms.
    assert jobs_named(h, "priced-one") == [] and "create:priced-one" not in toy.calls

    answer, payload = confirm(h, pushed["id"])
    assert answer.status_code == 200 and answer.json() == {"response_action": "clear"}
    assert h.slack.views == {}  # the confirmation and the form closed together
    h.wait(lambda: "create:priced-one" in toy.calls)
    [job] = jobs_named(h, "priced-one")
    assert job.submission_key == pushed["id"] and job.spec.value("rounds") == 4.0
    assert job.spec.base_model == "toy-base-2" and job.backend == "toy"
    card = h.wait(lambda: [m for m in h.bot_messages("C0GENERAL") if "priced-one" in m["text"]])[0]
    assert "Waiting in the toy box" in json.dumps(card["blocks"])

    # Slack sends the confirmation's submission again: the same answer, nothing created twice.
    again = h.driver.post_payload(payload)
    assert again.status_code == 200 and again.json() == {"response_action": "clear"}
    h.run_for(10, step=5)
    assert len(jobs_named(h, "priced-one")) == 1 and toy.calls.count("create:priced-one") == 1


def test_the_ack_never_waits_for_the_estimate(priced: tuple[Harness, ToyBackend]) -> None:
    h, toy = priced
    toy.estimate_gate = threading.Event()  # the service is slow to estimate
    try:
        started = time.monotonic()
        answer, _ = submit_form(h, "slow-quote")
        elapsed = time.monotonic() - started
        assert answer.json()["response_action"] == "push" and elapsed < 2.5, elapsed
        pushed = h.driver.wait_for_view()
        assert "Estimating the price" in view_text(h.driver.view(pushed["id"])) and "submit" not in h.driver.view(
            pushed["id"]
        )
    finally:
        toy.estimate_gate.set()
    assert filled_in(h, pushed["id"])["submit"]["text"] == "Start training"


def test_a_refused_estimate_says_why_and_creates_nothing(priced: tuple[Harness, ToyBackend]) -> None:
    h, toy = priced
    toy.quote = PriceQuote(
        total_usd=900, tokens=9_000_000, allowed=False, limit_usd=100, reason="Estimated cost exceeds the budget"
    )
    submit_form(h, "too-dear")
    pushed = h.driver.wait_for_view()
    shown = filled_in(h, pushed["id"])
    assert "submit" not in shown  # no Start button: nothing to confirm
    assert "Toy will not start this fine-tune: Estimated cost exceeds the budget" in view_text(shown)
    assert "*Estimated price:* $900.00" in view_text(shown) and "$100.00" in view_text(shown)
    h.driver.view_closed(pushed["id"])
    h.run_for(10, step=5)
    assert jobs_named(h, "too-dear") == [] and "create:too-dear" not in toy.calls


def test_a_failed_estimate_lets_the_user_start_anyway(priced: tuple[Harness, ToyBackend]) -> None:
    h, toy = priced
    toy.quote = ServerError("the estimator is down", status=503)
    submit_form(h, "no-quote")
    pushed = h.driver.wait_for_view()
    shown = filled_in(h, pushed["id"])
    assert "Toy did not give a price estimate: the estimator is down" in view_text(shown)
    assert shown["submit"]["text"] == "Start anyway"
    answer, _ = confirm(h, pushed["id"])
    assert answer.json() == {"response_action": "clear"}
    h.wait(lambda: "create:no-quote" in toy.calls)
    assert len(jobs_named(h, "no-quote")) == 1


def test_a_slug_taken_while_confirming_is_said_on_the_confirmation(priced: tuple[Harness, ToyBackend]) -> None:
    h, toy = priced
    submit_form(h, "contested")
    pushed = h.driver.wait_for_view()
    filled_in(h, pushed["id"])
    # Meanwhile someone else's job takes the slug.
    h.runtime.store.create_job(
        team_id=h.slack.team_id,
        channel_id="C0GENERAL",
        requester_id="U0BOB",
        backend="toy",
        project="toy:local",
        spec=FineTuneSpec(backend="toy", dataset_id="toy-ds-1", slug="contested", base_model="toy-base-1"),
        now=h.clock.utc(),
    )
    answer, _ = confirm(h, pushed["id"])
    body = answer.json()
    assert body["response_action"] == "update" and "submit" not in body["view"]
    assert "The fine-tune was not started" in view_text(body["view"]) and "contested" in view_text(body["view"])
    assert [j.requester_id for j in jobs_named(h, "contested")] == ["U0BOB"]
    assert "create:contested" not in toy.calls


def test_a_backend_without_price_estimates_starts_on_the_forms_submit(tmp_path: Path) -> None:
    toy = ToyBackend()
    with registered(toy_declaration(cancel=True)):
        h = Harness(tmp_path, backends=[toy])
        try:
            answer, _ = submit_form(h, "unpriced")
            assert answer.status_code == 200 and not answer.content  # the modal closes: no confirmation
            h.wait(lambda: "create:unpriced" in toy.calls)
            assert not [c for c in toy.calls if c.startswith("estimate")]
        finally:
            h.close()
