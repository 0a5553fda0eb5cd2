"""Try it end to end, through signed requests to the real HTTP endpoint: the click opens the modal, the submit
acks with "Asking…", the answer comes with views.update; not servable, slow, not allowed; "Share in thread"
posts the exchange once."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from slackbot import ids
from slackbot.blocks.try_it import BLOCK_ANSWER_PREFIX, BLOCK_SHARE
from slackbot.sandbox.slack_views import validate_view
from tests.e2e.harness import Harness
from tests.openpipe.conftest import Contract
from tests.try_it.conftest import ALICE, BOB, click_try_it, deploy, follow, settled

MakeHarness = Callable[..., Harness]


def _open(h: Harness, job_id: int, user: str = ALICE) -> dict[str, Any]:
    assert click_try_it(h, job_id, user=user).status_code == 200
    view = h.driver.wait_for_view()
    return settled(h, view["id"], leaving="Getting the model ready")


def _ask(h: Harness, view: dict[str, Any], prompt: str, system: str | None = None, user: str = ALICE) -> Any:
    values = {ids.BLOCK_TRY_PROMPT: prompt}
    if system is not None:
        values[ids.BLOCK_TRY_SYSTEM] = system
    return h.driver.view_submission(view["id"], values, user_id=user)


def _texts(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def test_a_question_is_answered_in_the_modal_and_nothing_is_posted(make_harness: MakeHarness) -> None:
    h = make_harness()
    job_id = follow(h, "support-bot")
    deploy(h)
    posted_before = len(h.slack.calls_to("chat.postMessage"))
    view = _open(h, job_id)
    assert view["callback_id"] == ids.VIEW_TRY_IT and view["submit"]["text"] == "Ask"
    assert "openpipe:support-bot" in _texts(view)
    assert {b.get("block_id") for b in view["blocks"]} >= {ids.BLOCK_TRY_PROMPT, ids.BLOCK_TRY_SYSTEM}

    prompt = "Where is <@U0BOB> my order? @channel & more"
    response = _ask(h, view, prompt, system="Be brief.")
    # The ack itself turns the modal into "Asking…", at once.
    answer = response.json()
    assert answer["response_action"] == "update"
    assert "Asking `openpipe:support-bot`" in _texts(answer["view"])
    final = settled(h, view["id"], leaving="Asking")
    shown = _texts(final)
    # The stand-in echoes the question: the answer is shown escaped (no mention, no broadcast can form).
    assert "[support-bot] You said: Where is &lt;@U0BOB&gt; my order? @\u200bchannel &amp; more" in shown
    sections = " ".join(b["text"]["text"] for b in final["blocks"] if b["type"] == "section")
    assert "<@U0BOB>" not in sections and "@channel" not in sections
    assert ids.ACTION_TRY_SHARE in shown and final["submit"]["text"] == "Ask again"
    validate_view(final)
    # One chat call, with the system message first; the exchange is not posted anywhere.
    (sent,) = [r for r in h.openpipe.requests if r.path == "/chat/completions"]
    assert sent.json["model"] == "openpipe:support-bot"
    assert [m["role"] for m in sent.json["messages"]] == ["system", "user"]
    assert sent.json["messages"][1]["content"] == prompt
    assert len(h.slack.calls_to("chat.postMessage")) == posted_before


def test_requests_to_openpipe_conform(make_harness: MakeHarness, contract: Contract) -> None:
    h = make_harness()
    job_id = follow(h, "conform-bot")
    deploy(h)
    view = _open(h, job_id)
    _ask(h, view, "Hello")
    settled(h, view["id"], leaving="Asking")
    (sent,) = [r for r in h.openpipe.requests if r.path == "/chat/completions"]
    contract.validate_request("POST", "/chat/completions", sent.json)


def test_a_long_answer_is_clipped_within_block_kit_limits(make_harness: MakeHarness) -> None:
    h = make_harness()
    job_id = follow(h, "chatty-bot")
    deploy(h)
    view = _open(h, job_id)
    _ask(h, view, "&" * 2900)  # escaped, each & is five characters: the worst case for the limits
    final = settled(h, view["id"], leaving="Asking")
    validate_view(final)  # what Slack would refuse (size, blocks, labels)
    for block in final["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
    assert any(str(b.get("block_id", "")).startswith(BLOCK_ANSWER_PREFIX) for b in final["blocks"])


def test_a_model_still_training_or_no_longer_served_gets_a_clear_message(make_harness: MakeHarness) -> None:
    h = make_harness()
    job_id = follow(h, "young-model")
    view = _open(h, job_id)
    assert "is *PENDING*: only a finished model can be tried" in _texts(view)
    assert "submit" not in view

    deploy(h)
    # Deprecated at OpenPipe since the last poll: the bot still thinks it is deployed; the service says no.
    h.openpipe.set_status("young-model", "DEPRECATED")
    view = _open(h, job_id)
    _ask(h, view, "Still there?")
    final = settled(h, view["id"], leaving="Asking")
    shown = _texts(final)
    assert "cannot be called: OpenPipe does not serve it" in shown and "not deployed" in shown
    assert ids.ACTION_TRY_SHARE not in shown, "nothing to share"
    assert final["submit"]["text"] == "Ask again"


def test_a_slow_model_is_given_up_on_after_the_time_limit(make_harness: MakeHarness) -> None:
    h = make_harness(try_it_timeout_seconds=0.5)
    job_id = follow(h, "slow-model")
    deploy(h)
    h.openpipe.chat_delay_seconds = 5.0
    view = _open(h, job_id)
    _ask(h, view, "Take your time")
    final = settled(h, view["id"], leaving="Asking")
    assert "did not answer within 0.5 s" in _texts(final)
    assert "TRY_IT_TIMEOUT_SECONDS" in _texts(final)


def test_share_in_thread_tells_the_exchange_once(make_harness: MakeHarness) -> None:
    h = make_harness()
    job_id = follow(h, "share-bot")
    deploy(h)
    job = h.runtime.store.get(job_id)
    assert job is not None and job.card_ts
    view = _open(h, job_id)
    _ask(h, view, "What is 2+2?")
    answered = settled(h, view["id"], leaving="Asking")
    replies_before = h.slack.thread("C0GENERAL", job.card_ts)

    h.driver.block_action(view["id"], BLOCK_SHARE, ids.ACTION_TRY_SHARE)
    after = h.wait(lambda: (v := h.driver.view(view["id"])) and "Shared in the job's thread" in _texts(v) and v)
    assert '"type": "button"' not in _texts(after), "the Share button is gone"
    shared = h.wait(lambda: h.slack.thread("C0GENERAL", job.card_ts)[len(replies_before) :])
    assert len(shared) == 1
    assert "<@U0ALICE> tried `openpipe:share-bot`" in shared[0]["text"]
    assert "What is 2+2?" in shared[0]["text"] and "[share-bot] You said: What is 2+2?" in shared[0]["text"]

    # A second click on the same answer (a double click: Slack sends the view as it was): not told again.
    payload = {
        "type": "block_actions",
        "team": {"id": h.slack.team_id, "domain": "local"},
        "user": {"id": ALICE, "username": "alice", "name": "alice", "team_id": h.slack.team_id},
        "api_app_id": h.slack.app_id,
        "token": "local-verification-token",
        "container": {"type": "view", "view_id": view["id"]},
        "trigger_id": h.slack.issue_trigger_id(user_id=ALICE),
        "view": answered,
        "actions": [
            {"type": "button", "block_id": BLOCK_SHARE, "action_id": ids.ACTION_TRY_SHARE, "value": str(job_id)}
        ],
    }
    assert h.driver.post_payload(payload).status_code == 200
    h.run_for(5, step=1)
    assert len(h.slack.thread("C0GENERAL", job.card_ts)) == len(replies_before) + 1
    notices = [r for r in h.runtime.store.outbox_for_job(job_id) if r.dedupe_key.startswith("notice:try:")]
    assert len(notices) == 1 and notices[0].state == "sent"


def test_only_people_who_may_start_jobs_may_try(make_harness: MakeHarness) -> None:
    h = make_harness(allowed_users=(ALICE,))
    job_id = follow(h, "team-model")
    deploy(h)
    view = _open(h, job_id, user=BOB)
    assert "not on the list of people allowed" in _texts(view)
    assert "submit" not in view
    assert not [r for r in h.openpipe.requests if r.path == "/chat/completions"]
    # Alice may.
    view = _open(h, job_id, user=ALICE)
    assert view["submit"]["text"] == "Ask"


def test_a_job_of_a_private_channel_cannot_be_tried_by_others(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.slack.add_channel("C0SECRET", "secret", is_private=True)
    job_id = follow(h, "secret-model", channel="C0SECRET")
    deploy(h)
    # Bob, from his Home tab (no channel): the job reads as one he cannot see.
    payload_view = _open_from_nowhere(h, job_id, BOB)
    assert "not one you can see" in _texts(payload_view)


def _open_from_nowhere(h: Harness, job_id: int, user: str) -> dict[str, Any]:
    payload = {
        "type": "block_actions",
        "team": {"id": h.slack.team_id, "domain": "local"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": h.slack.team_id},
        "api_app_id": h.slack.app_id,
        "token": "local-verification-token",
        "container": {"type": "view", "view_id": "V0HOME"},
        "trigger_id": h.slack.issue_trigger_id(user_id=user),
        "actions": [{"type": "button", "block_id": "b", "action_id": ids.ACTION_TRY_IT, "value": str(job_id)}],
    }
    assert h.driver.post_payload(payload).status_code == 200
    view = h.driver.wait_for_view()
    return settled(h, view["id"], leaving="Getting the model ready")
