"""Submission rules through the real endpoint: field errors, refusals with "Edit and retry", exactly one model
per submission, the message shortcut's thread, channel fallbacks and the permission rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from slackbot import ids
from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.domain.lifecycle import Lifecycle
from tests.e2e.harness import OPENPIPE_KEY, Harness
from tests.jobs.helpers import wait_database_clock


def _fill(h: Harness, view: dict[str, Any], slug: str, dataset_name: str = "Customer support") -> dict[str, Any]:
    options = h.dataset_option(view, "")
    dataset = next(o for o in options if o["text"]["text"].startswith(dataset_name))
    return {
        ids.BLOCK_DATASET: dataset,
        ids.block_base_model(Provider.OPENPIPE): "meta-llama/Meta-Llama-3.1-8B-Instruct",
        ids.BLOCK_SLUG: slug,
    }


def _creates(h: Harness) -> list[Any]:
    return [r for r in h.openpipe.requests if r.method == "POST" and r.path == "/models"]


def _seed_dataset(h: Harness) -> None:
    h.openpipe.add_dataset("Customer support", entries=500)


def _refused(h: Harness, slug: str, epochs: str) -> dict[str, Any]:
    """Submit a form (with `epochs` typed) that OpenPipe refuses after the modal closed; the refusal message."""
    view = h.open_modal()
    values = _fill(h, view, slug)
    values[ids.BLOCK_SFT_EPOCHS] = epochs
    h.openpipe.inject("POST /models", "status", status=400, times=1)
    assert h.driver.view_submission(view["id"], values).status_code == 200
    notice: dict[str, Any] = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
    return notice


def _raw_submission(h: Harness, view: dict[str, Any], values: dict[str, Any], trigger_id: str) -> Any:
    """A view_submission of `view` with exactly these `view.state.values`, as Slack could send it."""
    return h.driver.post_payload(
        {
            "type": "view_submission",
            "team": {"id": h.slack.team_id, "domain": "local"},
            "user": {"id": "U0ALICE", "username": "alice", "team_id": h.slack.team_id},
            "api_app_id": h.slack.app_id,
            "token": "legacy",
            "trigger_id": trigger_id,
            "view": {**view, "state": {"values": values}},
        }
    )


def test_field_errors_are_shown_under_the_fields_and_nothing_is_created(harness: Harness) -> None:
    h = harness
    _seed_dataset(h)
    view = h.open_modal()
    values = _fill(h, view, "Bad Slug!")
    values.update({ids.BLOCK_SFT_EPOCHS: "-3", ids.BLOCK_TEMPERATURE: "7"})
    response = h.driver.view_submission(view["id"], values)
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    errors = answer["errors"]
    assert set(errors) >= {ids.BLOCK_SLUG, ids.BLOCK_SFT_EPOCHS, ids.BLOCK_TEMPERATURE}
    assert "lowercase" in errors[ids.BLOCK_SLUG].lower()
    assert "2" in errors[ids.BLOCK_TEMPERATURE]
    # The modal stays open with what was typed (Slack keeps it; the bot must not replace the view).
    assert view["id"] in h.slack.views
    assert _creates(h) == []
    assert h.bot_messages("C0GENERAL") == []


def test_taken_slug_is_refused_before_submission(harness: Harness) -> None:
    h = harness
    _seed_dataset(h)
    first = h.open_modal()
    assert h.driver.view_submission(first["id"], _fill(h, first, "taken-slug")).status_code == 200
    h.wait(lambda: h.bot_messages("C0GENERAL"))
    second = h.open_modal()
    answer = h.driver.view_submission(second["id"], _fill(h, second, "taken-slug")).json()
    assert answer["response_action"] == "errors"
    assert "taken-slug" in answer["errors"][ids.BLOCK_SLUG] or "taken" in answer["errors"][ids.BLOCK_SLUG].lower()
    assert len(_creates(h)) == 1


def test_refusal_after_close_offers_edit_and_retry_with_the_typed_values(harness: Harness) -> None:
    h = harness
    _seed_dataset(h)
    notice = _refused(h, "will-be-refused", epochs="2")
    assert "will-be-refused" in notice["text"] and "not started" in notice["text"]
    assert ids.ACTION_EDIT_RETRY in json.dumps(notice["blocks"])

    h.driver.message_block_action("C0GENERAL", notice["ts"], ids.ACTION_EDIT_RETRY, value=None)
    reopened = h.driver.wait_for_view()
    slug_block = next(b for b in reopened["blocks"] if b.get("block_id") == ids.BLOCK_SLUG)
    assert slug_block["element"].get("initial_value") == "will-be-refused"
    epochs_block = next(b for b in reopened["blocks"] if b.get("block_id") == ids.BLOCK_SFT_EPOCHS)
    assert epochs_block["element"].get("initial_value") == "2"

    # The second attempt goes through and reuses the slug.
    retry = h.driver.view_submission(reopened["id"], {})
    assert retry.status_code == 200 and not retry.content, retry.text
    h.wait(lambda: len(_creates(h)) == 2)
    h.run_for(2)  # the card waits its turn: one post per second per channel
    card = h.wait(lambda: [m for m in h.bot_messages("C0GENERAL") if m["ts"] != notice["ts"]])[0]
    assert "will-be-refused" in card["text"]


def test_double_submission_creates_one_model(harness: Harness) -> None:
    h = harness
    _seed_dataset(h)
    view = h.open_modal()
    values = _fill(h, view, "only-once")
    payload_view = dict(h.driver.view(view["id"]))
    first = h.driver.view_submission(view["id"], values)
    assert first.status_code == 200
    # Slack redelivers the same submission (same view id): the bot must not start a second model.
    h.wait(lambda: h.bot_messages("C0GENERAL"))
    second = _raw_submission(h, payload_view, _state(h, payload_view, values), trigger_id="1.2.3")
    assert second.status_code == 200
    h.run_for(3)
    assert len(_creates(h)) == 1
    assert len(h.bot_messages("C0GENERAL")) == 1


def _state(h: Harness, view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    from slackbot.sandbox.slack_payloads import submission_state

    return submission_state(view["blocks"], {}, values)


def test_message_shortcut_posts_the_card_in_that_thread(harness: Harness) -> None:
    h = harness
    _seed_dataset(h)
    root = h.slack.add_message("C0GENERAL", "let's fine-tune on last week's tickets")
    assert h.driver.message_shortcut(ids.SHORTCUT_FROM_THREAD, message_ts=root).status_code == 200
    view = h.driver.wait_for_view()
    assert h.driver.view_submission(view["id"], _fill(h, view, "from-thread")).status_code == 200
    card = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
    assert card["thread_ts"] == root
    h.run_for(130, step=5)
    replies = [m for m in h.slack.thread("C0GENERAL", root) if m.get("user") == h.slack.bot_user_id]
    assert len(replies) >= 3  # the card and at least two transitions, all inside the original thread
    assert all(m.get("thread_ts") == root for m in replies)


def test_public_channel_not_joined_is_joined(harness: Harness) -> None:
    h = harness
    _seed_dataset(h)
    h.slack.add_channel("C0PUBLIC", "ml-public", bot_is_member=False)
    view = h.open_modal(channel_id="C0PUBLIC", channel_name="ml-public")
    assert h.driver.view_submission(view["id"], _fill(h, view, "joins-channel")).status_code == 200
    card = h.wait(lambda: h.bot_messages("C0PUBLIC"))[0]
    assert "joins-channel" in card["text"]
    assert [c.args.get("channel") for c in h.slack.calls_to("conversations.join")] == ["C0PUBLIC"]


@pytest.mark.parametrize("private,archived", [(True, False), (False, True)])
def test_unusable_channel_falls_back_to_a_dm(harness: Harness, private: bool, archived: bool) -> None:
    h = harness
    _seed_dataset(h)
    h.slack.add_channel("C0CLOSED", "closed", is_private=private, is_archived=archived, bot_is_member=False)
    view = h.open_modal(channel_id="C0CLOSED", channel_name="closed")
    assert h.driver.view_submission(view["id"], _fill(h, view, "goes-to-dm")).status_code == 200
    # The job starts anyway and the requester learns where to follow it.
    h.wait(lambda: _creates(h))
    opened = h.wait(lambda: h.slack.calls_to("conversations.open"))
    dm = opened[-1].response["channel"]["id"]
    dm_messages = h.wait(lambda: h.bot_messages(dm))
    assert any("goes-to-dm" in m["text"] for m in dm_messages)
    assert h.bot_messages("C0CLOSED") == []
    h.run_for(70, step=5)
    assert any("queued" in m["text"].lower() for m in h.bot_messages(dm))


def test_permission_rule_refuses_and_creates_nothing(tmp_path: Path) -> None:
    h = Harness(tmp_path, allowed_users="U0BOB")
    try:
        _seed_dataset(h)
        response = h.driver.slash_command("/finetune", user_id="U0ALICE")
        assert response.status_code == 200
        assert "not on the list" in response.text
        assert h.slack.calls_to("views.open") == []
        # Bob may.
        view = h.open_modal(user_id="U0BOB")
        assert view["callback_id"] == ids.VIEW_FINETUNE
        # A modal submitted by someone not allowed (e.g. the list changed meanwhile) creates nothing.
        answer = h.driver.view_submission(view["id"], _fill(h, view, "not-allowed"), user_id="U0ALICE").json()
        assert answer["response_action"] == "errors"
        assert _creates(h) == []
    finally:
        h.close()


def test_usergroup_permission(tmp_path: Path) -> None:
    h = Harness(tmp_path, allowed_usergroups="S0MLTEAM")
    try:
        h.slack.add_usergroup("S0MLTEAM", ["U0BOB"])
        h.runtime.permissions.warm()  # what the bot does at start: members are read in the background
        assert h.wait(lambda: "not on the list" in h.driver.slash_command("/finetune", user_id="U0ALICE").text)
        assert h.open_modal(user_id="U0BOB")["callback_id"] == ids.VIEW_FINETUNE
    finally:
        h.close()


def test_deployed_models_are_offered_as_bases(harness: Harness) -> None:
    h = harness
    _seed_dataset(h)
    view = h.open_modal()
    assert h.driver.view_submission(view["id"], _fill(h, view, "first-generation")).status_code == 200
    h.wait(lambda: h.bot_messages("C0GENERAL"))
    h.run_for(300, step=10)  # trained and DEPLOYED
    # The model list is stale-while-revalidate: the refresh this starts lands in the background.
    h.runtime.catalog.invalidate_models()
    h.wait(lambda: "first-generation" in h.runtime.catalog.base_models(Provider.OPENPIPE, wait=2.0))
    view = h.open_modal()
    block = next(b for b in view["blocks"] if b.get("block_id") == ids.block_base_model(Provider.OPENPIPE))
    offered = [o["value"] for o in block["element"]["options"]]
    assert "first-generation" in offered and "meta-llama/Meta-Llama-3.1-8B-Instruct" in offered


def test_dataset_that_vanished_is_named(harness: Harness) -> None:
    h = harness
    doomed = h.openpipe.add_dataset("Soon gone", entries=3)
    view = h.open_modal()
    values = _fill(h, view, "needs-a-dataset", dataset_name="Soon gone")
    h.openpipe.remove_dataset(doomed)  # deleted in OpenPipe's web UI while the modal was open
    h.runtime.catalog.invalidate_datasets()  # the form took longer than the 2 s a listed dataset is trusted
    answer = h.driver.view_submission(view["id"], values).json()
    assert answer["response_action"] == "errors"
    assert "dataset" in answer["errors"][ids.BLOCK_DATASET].lower()
    assert _creates(h) == []


def test_picking_a_dataset_suggests_the_slug(harness: Harness) -> None:
    h = harness
    h.openpipe.add_dataset("Support tickets v2", entries=10)
    view = h.open_modal()
    option = next(o for o in h.dataset_option(view, "support") if o["text"]["text"].startswith("Support tickets v2"))
    old_hash = view["hash"]
    h.driver.block_action(view["id"], ids.BLOCK_DATASET, ids.ACTION_DATASET, selected_option=option)
    view = h.wait(lambda: (v := h.driver.view(view["id"]))["hash"] != old_hash and v)
    slug = next(b for b in view["blocks"] if b.get("block_id") == ids.BLOCK_SLUG)["element"]
    assert "support-tickets-v2" in slug["placeholder"]["text"]
    # Left blank (Slack kept the untouched input empty): the suggestion is used.
    answer = h.driver.view_submission(
        view["id"],
        {ids.block_base_model(Provider.OPENPIPE): "Qwen/Qwen3-8B", ids.BLOCK_SLUG: ""},
    )
    assert answer.status_code == 200 and not answer.content, answer.text
    post = h.wait(lambda: _creates(h))[0]
    assert post.json["slug"].startswith("support-tickets-v2") and post.json["datasetId"] == option["value"]


def test_rate_limited_create_is_refused_with_edit_and_retry(harness: Harness) -> None:
    h = harness
    _seed_dataset(h)
    view = h.open_modal()
    h.openpipe.inject("POST /models", "status", status=429, retry_after=0.05, times=None)
    assert h.driver.view_submission(view["id"], _fill(h, view, "busy-openpipe")).status_code == 200
    notice = h.wait(lambda: h.bot_messages("C0GENERAL"), timeout=15)[0]
    assert "busy-openpipe" in notice["text"] and ids.ACTION_EDIT_RETRY in json.dumps(notice["blocks"])
    assert h.openpipe.models() == []
    job = h.runtime.store.by_slug(h.slack.team_id, "busy-openpipe")
    assert job is not None and job.lifecycle is Lifecycle.REJECTED


def _made_elsewhere(h: Harness, slug: str) -> None:
    """A model created in the project without the bot (OpenPipe's web UI, another tool)."""
    dataset = h.openpipe.add_dataset(f"Elsewhere {slug}", entries=3)
    other = OpenPipeBackend(SecretStr(OPENPIPE_KEY), h.openpipe.url)
    try:
        other.create(
            openpipe_spec(dataset_id=dataset, slug=slug, provider=Provider.OPENPIPE, base_model="Qwen/Qwen3-8B")
        )
    finally:
        other.close()


def test_slug_of_a_model_made_elsewhere_is_refused_in_the_modal(harness: Harness) -> None:
    h = harness
    _seed_dataset(h)
    _made_elsewhere(h, "made-in-web-ui")
    view = h.open_modal()
    answer = h.driver.view_submission(view["id"], _fill(h, view, "made-in-web-ui")).json()
    assert answer["response_action"] == "errors"
    assert "already taken" in answer["errors"][ids.BLOCK_SLUG]
    assert len(_creates(h)) == 1  # only the one made elsewhere


def test_edit_and_retry_shows_the_refusal_under_the_field_it_is_about(harness: Harness) -> None:
    """The slug was taken at OpenPipe after the bot last listed the project's models: OpenPipe refuses the create,
    and "Edit and retry" reopens the form with OpenPipe's words right under the slug."""
    h = harness
    _seed_dataset(h)
    view = h.open_modal()
    h.wait(lambda: h.runtime.catalog.fresh_slugs(60) is not None)  # listed before the model below exists
    _made_elsewhere(h, "taken-meanwhile")
    assert h.driver.view_submission(view["id"], _fill(h, view, "taken-meanwhile")).status_code == 200
    notice = h.wait(lambda: h.bot_messages("C0GENERAL"))[0]
    h.driver.message_block_action("C0GENERAL", notice["ts"], ids.ACTION_EDIT_RETRY, value=None)
    reopened = h.driver.wait_for_view()
    blocks = reopened["blocks"]
    at = next(i for i, b in enumerate(blocks) if b.get("block_id") == ids.BLOCK_SLUG)
    under = blocks[at + 1]
    assert under["type"] == "context" and "globally unique" in under["elements"][0]["text"]
    assert "see the fields marked below" in blocks[0]["text"]["text"]  # the headline, at the top
    assert sum("globally unique" in json.dumps(b) for b in blocks) == 1  # said once, where it belongs


def test_an_accepted_form_is_on_disk_before_the_modal_closes(harness: Harness) -> None:
    """The job row is written before the ack, so nothing accepted is lost: not when the creates queue up behind a
    slow OpenPipe, not when the bot stops before it got to one. A second form with the same slug, sent while
    the first is still queued, gets the error under its slug field instead of vanishing."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from slackbot.jobs.tracker import NEVER_CREATED

    h = harness
    _seed_dataset(h)
    gate = threading.Event()
    # A bot whose work after the ack never gets to this submission (a backlog, then a stop).
    queue = ThreadPoolExecutor(max_workers=1)
    queue.submit(gate.wait)
    h.runtime.after_ack = queue
    # The row is written under its create's lease, which a create that never runs does not renew. Shortened here:
    # the tracker's clock is injected, but a lease runs out by the database's.
    h.runtime.submitter.lease_seconds = 0.5
    try:
        first = h.open_modal()
        accepted = h.driver.view_submission(first["id"], _fill(h, first, "queued-up"))
        assert accepted.status_code == 200 and not accepted.content, accepted.text
        job = h.runtime.store.by_slug(h.slack.team_id, "queued-up")
        assert job is not None and job.lifecycle is Lifecycle.SUBMITTING and job.requester_id == "U0ALICE"

        second = h.open_modal(user_id="U0BOB")
        answer = h.driver.view_submission(second["id"], _fill(h, second, "queued-up"), user_id="U0BOB").json()
        assert answer["response_action"] == "errors"
        assert "queued-up" in answer["errors"][ids.BLOCK_SLUG] and "taken" in answer["errors"][ids.BLOCK_SLUG]

        # The create never ran: once its lease is out, the tracker finds the row, looks for the model, and after
        # its grace period tells the requester, with the typed values kept for "Edit and retry".
        wait_database_clock(h.runtime.store.engine, 0.5)
        h.run_for(11 * 60, step=30)
        [notice] = h.wait(lambda: h.bot_messages("C0GENERAL"))
        assert "queued-up" in notice["text"] and NEVER_CREATED.split(",")[0] in notice["text"]
        assert ids.ACTION_EDIT_RETRY in json.dumps(notice["blocks"])
    finally:
        gate.set()
        queue.shutdown(wait=True)
    # The queued start, run at last, sees the job was resolved and creates nothing.
    assert _creates(h) == []


def test_edit_and_retry_submits_the_put_back_values_even_if_slack_reports_none(harness: Harness) -> None:
    """The reopened form's values are its inputs' initial values. Submitted untouched, they are used even when
    the payload's view.state has no entry for them (seen from Slack in some cases: bolt-js#1258)."""
    h = harness
    _seed_dataset(h)
    notice = _refused(h, "put-back", epochs="4")
    h.driver.message_block_action("C0GENERAL", notice["ts"], ids.ACTION_EDIT_RETRY, value=None)
    reopened = dict(h.driver.wait_for_view())
    answer = _raw_submission(h, reopened, {}, trigger_id="1.2.4")  # Slack reports no input at all
    assert answer.status_code == 200 and not answer.content, answer.text
    h.wait(lambda: len(_creates(h)) == 2)
    sent = _creates(h)[1].json
    assert sent["slug"] == "put-back" and sent["trainingConfig"]["sft_hyperparameters"]["num_epochs"] == 4, sent


def test_a_database_that_fails_at_submission_keeps_the_form_open_with_a_message(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the job row cannot be written, nothing is started and the form stays open with what was typed, saying
    why under the slug field (no traceback, no lost input)."""
    from sqlalchemy.exc import OperationalError

    h = harness
    _seed_dataset(h)
    view = h.open_modal()

    def failing(request: object) -> object:
        raise OperationalError("INSERT INTO jobs", {}, Exception("database is locked"))

    monkeypatch.setattr(h.runtime.submitter, "record", failing)  # a database fault at exactly this step
    answer = h.driver.view_submission(view["id"], _fill(h, view, "not-saved")).json()
    monkeypatch.undo()
    assert answer["response_action"] == "errors"
    assert (
        "could not be saved" in answer["errors"][ids.BLOCK_SLUG]
        and "nothing was started" in answer["errors"][ids.BLOCK_SLUG]
    )
    assert "INSERT" not in json.dumps(answer) and "locked" not in json.dumps(answer)
    assert view["id"] in h.slack.views
    assert _creates(h) == []
    # Submitted again once the database answers, it goes through.
    again = h.driver.view_submission(view["id"], _fill(h, view, "not-saved"))
    assert again.status_code == 200 and not again.content, again.text
    h.wait(lambda: len(_creates(h)) == 1)
