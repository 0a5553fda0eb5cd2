"""The App Home tab end to end, through signed requests to the real HTTP endpoint: published when opened (a user
with no jobs is told what the bot does), the user's jobs and the workspace's running ones with their buttons,
private jobs only to their requester, "New fine-tune" and "Try it" from the tab, and the refresh after a
transition, at most once per 10 s per user."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from slackbot import ids
from slackbot.blocks.home import BLOCK_JOB_PREFIX
from slackbot.sandbox.slack_views import validate_view
from tests.e2e.harness import Harness
from tests.try_it.conftest import ALICE, BOB, deploy, follow, settled

MakeHarness = Callable[..., Harness]


def _published(h: Harness, user: str, count: int) -> dict[str, Any]:
    """The view of the `count`-th views.publish for `user`, once it was made (publishing follows the ack)."""
    calls = h.wait(
        lambda: (
            len(mine := [c for c in h.slack.calls_to("views.publish") if c.args.get("user_id") == user]) >= count
            and mine
        )
    )
    view: dict[str, Any] = calls[count - 1].args["view"]
    validate_view(view)
    return view


def _publishes(h: Harness, user: str) -> int:
    return len([c for c in h.slack.calls_to("views.publish") if c.args.get("user_id") == user])


def _text(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def _jobs_on(view: dict[str, Any]) -> set[int]:
    return {
        int(b["block_id"].removeprefix(BLOCK_JOB_PREFIX))
        for b in view["blocks"]
        if str(b.get("block_id", "")).startswith(BLOCK_JOB_PREFIX) and b["type"] == "section"
    }


def test_a_user_with_no_jobs_is_told_what_the_bot_does(make_harness: MakeHarness) -> None:
    h = make_harness()
    assert h.driver.app_home_opened(BOB).status_code == 200
    view = _published(h, BOB, 1)
    assert view["type"] == "home"
    text = _text(view)
    assert "I start fine-tuning jobs on OpenPipe" in text and "*To start:*" in text and "`/finetune`" in text
    assert ids.ACTION_HOME_NEW_FINETUNE in text
    assert _jobs_on(view) == set()
    # The Messages tab publishes nothing.
    h.driver.app_home_opened(BOB, tab="messages")
    h.driver.app_home_opened(ALICE, tab="messages")
    time.sleep(0.3)  # a publish would follow the ack within milliseconds
    assert _publishes(h, BOB) == 1 and _publishes(h, ALICE) == 0


def test_the_users_jobs_and_the_workspaces_running_ones(make_harness: MakeHarness) -> None:
    h = make_harness()
    done = follow(h, "alice-done", user=ALICE)
    deploy(h)
    running = follow(h, "bob-running", user=BOB)
    h.driver.app_home_opened(ALICE)
    view = _published(h, ALICE, 1)
    assert _jobs_on(view) == {done, running}
    text = _text(view)
    line = next(b for b in view["blocks"] if b.get("block_id") == f"{BLOCK_JOB_PREFIX}{done}")["text"]["text"]
    assert "*alice-done*" in line and "Deployed" in line and "OpenPipe" in line and "`Qwen/Qwen3-8B`" in line
    assert "<!date^" in line and "|thread> in <#C0GENERAL>" in line and "https://local.slack.com/archives/" in line
    bob_line = next(b for b in view["blocks"] if b.get("block_id") == f"{BLOCK_JOB_PREFIX}{running}")["text"]["text"]
    assert "by <@U0BOB>" in bob_line and "Accepted" in bob_line
    # Try it on the finished model only (OpenPipe serves chat); no Cancel (OpenPipe cannot cancel).
    try_values = [
        e["value"]
        for b in view["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == ids.ACTION_TRY_IT
    ]
    assert try_values == [str(done)]
    assert ids.ACTION_CANCEL_JOB not in text
    assert "I start fine-tuning jobs" not in text, "the welcome is for users without jobs"


def test_private_and_dm_jobs_show_only_to_their_requester(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.slack.add_channel("C0SECRET", "secret", is_private=True)
    dm = h.slack.workspace.open_im(ALICE).id
    public = follow(h, "public-job", channel="C0RANDOM")
    secret = follow(h, "secret-job", channel="C0SECRET")
    direct = follow(h, "dm-job", channel=dm)
    h.driver.app_home_opened(ALICE)
    assert _jobs_on(_published(h, ALICE, 1)) == {public, secret, direct}
    h.driver.app_home_opened(BOB)
    bob = _published(h, BOB, 1)
    assert _jobs_on(bob) == {public}
    assert "secret-job" not in _text(bob) and "dm-job" not in _text(bob)


def test_try_it_from_the_home_tab(make_harness: MakeHarness) -> None:
    h = make_harness()
    job_id = follow(h, "home-model")
    deploy(h)
    h.driver.app_home_opened(ALICE)
    _published(h, ALICE, 1)
    assert h.driver.home_action(ids.ACTION_TRY_IT, str(job_id), user_id=ALICE).status_code == 200
    view = settled(h, h.driver.wait_for_view()["id"], leaving="Getting the model ready")
    assert view["submit"]["text"] == "Ask"
    h.driver.view_submission(view["id"], {ids.BLOCK_TRY_PROMPT: "Hi from home"})
    final = settled(h, view["id"], leaving="Asking")
    assert "[home-model] You said: Hi from home" in _text(final)


def test_new_fine_tune_opens_the_form_for_a_card_in_the_users_dm(make_harness: MakeHarness) -> None:
    h = make_harness()
    h.driver.app_home_opened(ALICE)
    _published(h, ALICE, 1)
    assert h.driver.home_action(ids.ACTION_HOME_NEW_FINETUNE, user_id=ALICE).status_code == 200
    view = h.driver.wait_for_view()
    assert view["callback_id"] == ids.VIEW_FINETUNE
    dm = h.slack.calls_to("conversations.open")[-1].response
    assert dm is not None and json.loads(view["private_metadata"])["channel_id"] == dm["channel"]["id"]


def test_new_fine_tune_says_why_not_when_not_allowed(make_harness: MakeHarness) -> None:
    h = make_harness(allowed_users=(ALICE,))
    h.driver.app_home_opened(BOB)
    _published(h, BOB, 1)
    h.driver.home_action(ids.ACTION_HOME_NEW_FINETUNE, user_id=BOB)
    view = h.driver.wait_for_view()
    assert view["callback_id"] != ids.VIEW_FINETUNE and "not on the list" in _text(view)


def test_a_transition_refreshes_the_tab_at_most_once_per_10_s(make_harness: MakeHarness) -> None:
    h = make_harness()
    job_id = follow(h, "moving-model")
    h.driver.app_home_opened(ALICE)
    first = _published(h, ALICE, 1)
    assert "Accepted" in _text(first)
    # Bob never opened his tab: nothing is published for him, whatever happens to his jobs.
    follow(h, "bobs-model", user=BOB)

    h.run_for(11, step=1)  # past the interval since the opening
    h.openpipe.set_status("moving-model", "QUEUED")
    h.run_for(1, step=1)
    second = _published(h, ALICE, 2)  # at once: none in the last 10 s
    assert "Queued" in _text(second)

    # Two more transitions within 10 s of that publish: held back, then told in one publish.
    h.openpipe.set_status("moving-model", "PROVISIONING")
    h.run_for(3, step=1)
    h.openpipe.set_status("moving-model", "TRAINING")
    h.run_for(3, step=1)
    job = h.runtime.store.get(job_id)
    assert job is not None and job.card_ts
    replies = [m["text"] for m in h.slack.thread("C0GENERAL", job.card_ts)]
    assert any("Training" in r for r in replies), replies
    time.sleep(0.6)  # the refresher looks every 0.25 s: a publish now would break the limit
    assert _publishes(h, ALICE) == 2
    h.run_for(5, step=1)
    third = _published(h, ALICE, 3)
    assert "Training" in _text(third) and "Queued" not in _text(third)
    h.run_for(30, step=5)
    time.sleep(0.6)
    assert _publishes(h, ALICE) == 3, "nothing changed since: nothing more to publish"
    assert _publishes(h, BOB) == 0


def test_stopping_the_bot_ends_the_home_refresher(make_harness: MakeHarness) -> None:
    h = make_harness()
    job_id = follow(h, "short-lived")
    h.driver.app_home_opened(ALICE)
    _published(h, ALICE, 1)
    h.runtime.stop()
    h.run_for(11, step=1)  # past the interval: a refresher still running would publish the next change at once
    job = h.runtime.store.get(job_id)
    assert job is not None
    h.runtime.notifier.on_transition(job)
    time.sleep(0.6)  # the refresher looks every 0.25 s
    assert _publishes(h, ALICE) == 1, "the Home tab's refresher outlived the bot"
