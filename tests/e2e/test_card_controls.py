"""The card's controls end to end, over signed HTTP: the real bot (Bolt behind waitress, the notifier, SQLite) with
the local Slack, the toy backend (cancel, delete) and the local OpenPipe (delete). Who may, Slack's confirm
dialogs, redelivered clicks, the thread told once, and the card's controls following the backend's capabilities."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import update

from slackbot import ids
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.backends.registry import registered
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.schema import jobs
from tests.e2e.cards import (
    blocks_text,
    card_now,
    card_once,
    click,
    controls,
    ephemerals_to,
    thread_texts,
    told_after_pacing,
)
from tests.e2e.harness import OPENPIPE_KEY, Harness
from tests.e2e.test_several_backends import _pick_backend
from tests.openpipe.conftest import Contract, spec_path
from tests.stand_ins.toy import ToyBackend, toy_declaration

CHANNEL = "C0GENERAL"


@pytest.fixture
def toy_bot(tmp_path: Path) -> Iterator[tuple[Harness, ToyBackend]]:
    toy = ToyBackend()
    with registered(toy_declaration(cancel=True, delete=True, eta=True)):
        h = Harness(tmp_path, backends=[toy], admin_users="U0CAROL, U0DAVE")
        h.slack.add_user("U0CAROL", "carol")
        try:
            yield h, toy
        finally:
            h.close()


def start_toy_job(h: Harness, toy: ToyBackend, slug: str = "toy-one") -> dict[str, Any]:
    """Alice starts a toy fine-tune through the form; its card once posted."""
    view = _pick_backend(h, h.open_modal(), "toy", "Toy")
    dataset = next(o for o in h.dataset_option(view) if o["text"]["text"].startswith("Toy bricks"))
    values = {ids.BLOCK_DATASET: dataset, ids.block_base_model("toy"): "toy-base-1", ids.BLOCK_SLUG: slug}
    answer = h.driver.view_submission(view["id"], values)
    assert answer.status_code == 200 and not answer.content, answer.text
    h.wait(lambda: f"create:{slug}" in toy.calls)
    card: dict[str, Any] = h.wait(lambda: [m for m in h.bot_messages(CHANNEL) if slug in m["text"]])[0]
    return card


def test_cancel_by_the_requester_is_told_once_with_the_price_and_strangers_are_refused(
    toy_bot: tuple[Harness, ToyBackend],
) -> None:
    h, toy = toy_bot
    card = start_toy_job(h, toy)
    toy.set_status("toy-one", "baking")
    h.run_for(10, step=5)
    job = h.runtime.store.by_slug(h.slack.team_id, "toy-one")
    assert job is not None and job.lifecycle is Lifecycle.RUNNING
    with h.runtime.engine.begin() as conn:  # what the tracker read last (it is another change that fills this)
        conn.execute(update(jobs).where(jobs.c.id == job.id).values(details={"price_usd": 2.5, "progress": 0.3}))

    # While it runs: a Cancel button with Slack's confirm dialog; no Delete, no Try it (toy has no chat).
    cancel = controls(card_now(h, card))
    assert list(cancel) == [ids.ACTION_CANCEL_JOB]
    assert (
        cancel[ids.ACTION_CANCEL_JOB]["confirm"]["style"] == "danger"
        and cancel[ids.ACTION_CANCEL_JOB]["style"] == "danger"
    )

    # Bob neither started it nor is an admin: told why, only him; the service is not asked.
    click(h, card, ids.ACTION_CANCEL_JOB, "U0BOB")
    refusal = h.wait(lambda: ephemerals_to(h, "U0BOB"))
    assert refusal == ["Only <@U0ALICE>, who started *toy-one*, or an admin of this app (ADMIN_USERS) can cancel it."]
    assert not [c for c in toy.calls if c.startswith("cancel")]

    # Alice confirms; Slack delivers the click again (a redelivery after its 3 s): the thread is told once.
    payload = click(h, card, ids.ACTION_CANCEL_JOB, "U0ALICE")
    told_after_pacing(h, job.id, "cancel")
    assert h.driver.post_payload(payload).status_code == 200
    told = [t for t in thread_texts(h, card) if "was cancelled" in t]
    h.wait(lambda: len(ephemerals_to(h, "U0ALICE")) == 1)
    assert told == ["toy-one was cancelled; it had cost $2.50 so far"]
    reply = next(m for m in h.slack.thread(CHANNEL, card["ts"]) if "was cancelled" in m["text"])
    assert "<@U0ALICE> cancelled *toy-one*" in blocks_text(reply)
    assert "Cooling down — the oven is being stopped" in blocks_text(reply)
    assert toy.calls.count("cancel:toy-one") == 1
    assert ephemerals_to(h, "U0ALICE") == ["<@U0ALICE> already asked Toy to cancel *toy-one*."]
    # The card shows the new status and who cancelled, and no Cancel any more.
    updated = card_now(h, card)
    assert "Cooling down" in blocks_text(updated) and "Cancel requested by <@U0ALICE>" in blocks_text(updated)
    assert controls(updated) == {}

    # The service then says it stopped: told as any transition, and the card offers Delete.
    toy.set_status("toy-one", "off")
    h.run_for(10, step=5)
    assert any("Oven off" in t for t in thread_texts(h, card))
    assert list(controls(card_now(h, card))) == [ids.ACTION_JOB_MENU]
    h.run_for(30, step=5)
    assert len([t for t in thread_texts(h, card) if t.startswith("toy-one was cancelled")]) == 1  # still once


def test_an_admin_deletes_a_finished_model_once_and_the_card_loses_its_controls(
    toy_bot: tuple[Harness, ToyBackend],
) -> None:
    h, toy = toy_bot
    card = start_toy_job(h, toy, "toy-two")
    toy.set_status("toy-two", "baked")
    h.run_for(10, step=5)
    job = h.runtime.store.by_slug(h.slack.team_id, "toy-two")
    assert job is not None and job.lifecycle is Lifecycle.SUCCEEDED
    menu = controls(card_once(h, card, lambda m: ids.ACTION_JOB_MENU in controls(m)))[ids.ACTION_JOB_MENU]
    assert [o["value"] for o in menu["options"]] == [f"delete:{job.id}"] and menu["confirm"]["style"] == "danger"

    click(h, card, ids.ACTION_JOB_MENU, "U0BOB", f"delete:{job.id}")
    assert h.wait(lambda: ephemerals_to(h, "U0BOB"))[0].startswith("Only <@U0ALICE>, who started *toy-two*")
    assert "toy-two" in toy.models

    payload = click(h, card, ids.ACTION_JOB_MENU, "U0CAROL", f"delete:{job.id}")
    told_after_pacing(h, job.id, "deleted")
    assert h.driver.post_payload(payload).status_code == 200  # redelivered
    h.wait(lambda: ephemerals_to(h, "U0CAROL"))
    assert ephemerals_to(h, "U0CAROL") == ["*toy-two* is already deleted."]
    reply = next(m for m in h.slack.thread(CHANNEL, card["ts"]) if "was deleted" in m["text"])
    blocks = blocks_text(reply)
    assert "<@U0CAROL> deleted the model *toy-two* on <!date^" in blocks and "<@U0ALICE>" in blocks
    assert toy.calls.count("delete:toy-two") == 1 and "toy-two" not in toy.models
    updated = card_now(h, card)
    assert "Deleted by <@U0CAROL> on <!date^" in blocks_text(updated) and controls(updated) == {}
    gone = h.runtime.store.get(job.id)
    assert gone is not None and gone.lifecycle is Lifecycle.GONE and not gone.tracking
    h.run_for(30, step=5)
    assert len([t for t in thread_texts(h, card) if "was deleted" in t]) == 1


def test_without_the_capabilities_the_card_has_no_controls(tmp_path: Path) -> None:
    toy = ToyBackend()
    with registered(toy_declaration()):
        h = Harness(tmp_path, backends=[toy])
        try:
            card = start_toy_job(h, toy, "plain-toy")
            toy.set_status("plain-toy", "baking")
            h.run_for(10, step=5)
            assert controls(card_now(h, card)) == {}
            # A click forged from an older card is refused in words, and the service is not asked.
            job = h.runtime.store.by_slug(h.slack.team_id, "plain-toy")
            assert job is not None
            body = {  # the card has no button to click: the payload, as Slack would send it, by hand
                "type": "block_actions",
                "team": {"id": h.slack.team_id, "domain": "local"},
                "user": {"id": "U0ALICE", "username": "alice", "name": "alice", "team_id": h.slack.team_id},
                "api_app_id": h.slack.app_id,
                "token": "local-verification-token",
                "container": {"type": "message", "message_ts": card["ts"], "channel_id": CHANNEL},
                "channel": {"id": CHANNEL, "name": "general"},
                "trigger_id": h.slack.issue_trigger_id(user_id="U0ALICE"),
                "actions": [{"type": "button", "action_id": ids.ACTION_CANCEL_JOB, "block_id": ids.BLOCK_CARD_ACTIONS,
                             "value": str(job.id), "action_ts": "1.0"}],
            }  # fmt: skip
            assert h.driver.post_payload(body).status_code == 200
            assert h.wait(lambda: ephemerals_to(h, "U0ALICE")) == [
                "Toy fine-tunes cannot be cancelled from Slack here."
            ]
            assert not [c for c in toy.calls if c.startswith("cancel")]
        finally:
            h.close()


def test_openpipe_delete_end_to_end_against_the_local_openpipe(harness: Harness) -> None:
    h = harness
    contract = Contract(json.loads(spec_path().read_text("utf-8")))
    dataset = h.openpipe.add_dataset("Elsewhere", entries=3)
    other = OpenPipeBackend(SecretStr(OPENPIPE_KEY), h.openpipe.url)
    other.create(
        openpipe_spec(dataset_id=dataset, slug="op-model", provider=Provider.OPENPIPE, base_model="Qwen/Qwen3-8B")
    )
    other.close()
    assert "Looking up" in h.command("track op-model")
    card = h.wait(lambda: h.bot_messages(CHANNEL))[0]
    h.run_for(5, step=5)
    assert ids.ACTION_CANCEL_JOB not in controls(card_now(h, card))  # OpenPipe cannot cancel
    h.openpipe.set_status("op-model", "DEPLOYED")
    h.run_for(20, step=5)
    job = h.runtime.store.by_slug(h.slack.team_id, "op-model")
    assert job is not None and job.lifecycle is Lifecycle.SUCCEEDED
    assert list(controls(card_now(h, card))) == [ids.ACTION_TRY_IT, ids.ACTION_JOB_MENU]

    payload = click(h, card, ids.ACTION_JOB_MENU, "U0ALICE", f"delete:{job.id}")
    told_after_pacing(h, job.id, "deleted")
    assert h.driver.post_payload(payload).status_code == 200  # a late redelivery
    h.wait(lambda: ephemerals_to(h, "U0ALICE"))
    deletes = [r for r in h.openpipe.requests if r.method == "DELETE"]
    assert [(r.path, r.json) for r in deletes] == [("/models/op-model", None)]
    assert "delete" in contract.spec["paths"]["/models/{modelSlug}"]
    assert not [m for m in h.openpipe.models() if m.get("slug") == "op-model"]
    # Asked again directly, the local OpenPipe answers as the spec says a missing model is answered.
    again = httpx.delete(f"{h.openpipe.url}/models/op-model", headers={"Authorization": f"Bearer {OPENPIPE_KEY}"})
    assert again.status_code == 404
    contract.validate_response("DELETE", "/models/{modelSlug}", 404, again.json())

    assert len([t for t in thread_texts(h, card) if "was deleted" in t]) == 1
    updated = card_now(h, card)
    assert "Deleted by <@U0ALICE>" in blocks_text(updated) and controls(updated) == {}
    assert ":wastebasket: Deleted at the service" in blocks_text(updated)
    h.run_for(30, step=5)  # no longer followed: nothing more is asked of OpenPipe about it
    assert not [
        r
        for r in h.openpipe.requests
        if r.path == "/models/op-model" and r.method == "GET" and r.time > deletes[0].time
    ]
