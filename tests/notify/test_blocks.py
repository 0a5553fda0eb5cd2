"""Unit tests of the card and reply builders: content, Slack limits, fallback text, no secrets, no pings."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from slack_sdk.models.blocks import Block

from slackbot.backends.openpipe.fields import PreferenceParams, Provider, SftParams, openpipe_spec
from slackbot.backends.openpipe.statuses import openpipe_lifecycle
from slackbot.blocks.card import status_card, status_shown
from slackbot.blocks.replies import (
    EDIT_RETRY_ACTION_ID,
    expired_reply,
    rejected_message,
    transition_reply,
)
from slackbot.domain.events import Expired, Rejected, Transition
from slackbot.domain.lifecycle import Lifecycle
from slackbot.jobs.records import JobRecord

T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
SECRET = "opk_live_0123456789abcdef"


def make_job(**changes: Any) -> JobRecord:
    spec = changes.pop(
        "spec",
        openpipe_spec(
            dataset_id="ds-1",
            slug="support-bot-v2",
            provider=Provider.OPENPIPE,
            base_model="meta-llama/Meta-Llama-3.1-8B-Instruct",
            sft=SftParams(epochs=3, batch_size="auto"),
        ),
    )
    data: dict[str, Any] = {
        "id": 7,
        "team_id": "T1",
        "channel_id": "C1",
        "thread_ts": None,
        "card_channel_id": None,
        "card_ts": None,
        "requester_id": "U0ALICE",
        "backend": "openpipe",
        "project": "p1",
        "slug": spec.slug,
        "model_id": "m-1",
        "provider": spec.option or "",
        "base_model": spec.base_model,
        "dataset_id": "ds-1",
        "dataset_name": "support-chats",
        "dataset_entries": 1234,
        "spec": spec,
        "form_state": None,
        "status": "TRAINING",
        "error_message": None,
        "created_at": T0,
        "updated_at": T0,
        "status_changed_at": T0,
        "finished_at": None,
        "tracking": True,
        "next_poll_at": T0,
        "poll_failures": 0,
    }
    data.update(changes)
    data.setdefault("lifecycle", openpipe_lifecycle(data["status"] or ""))
    return JobRecord(**data)


def moved(to: str | None, *, old: str = "PENDING", at: datetime = T0, error: str | None = None) -> Transition:
    """The transition event the store writes for an OpenPipe job moving from `old` to `to` (None: it vanished)."""
    return Transition(
        from_status=old,
        to_status=to,
        from_lifecycle=openpipe_lifecycle(old),
        to_lifecycle=Lifecycle.GONE if to is None else openpipe_lifecycle(to),
        at=at,
        error_message=error,
    )


def all_text(rendered: tuple[str, list[dict[str, Any]]]) -> str:
    return rendered[0] + "\n" + json.dumps(rendered[1], ensure_ascii=False)


def assert_valid(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    text, blocks = rendered
    assert text.strip(), "a notification fallback text is required"
    assert 0 < len(blocks) <= 50
    for block in blocks:
        # Round trip through slack_sdk's classes: they raise on any limit we broke.
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.to_dict()


def test_card_shows_everything_about_a_running_job() -> None:
    job = make_job()
    rendered = status_card(job, T0 + timedelta(minutes=75))
    assert_valid(rendered)
    body = all_text(rendered)
    for expected in (
        "support-bot-v2",
        "OpenPipe (open models)",
        "meta-llama/Meta-Llama-3.1-8B-Instruct",
        "support-chats (1,234 entries)",
        "<@U0ALICE>",
        ":weight_lifter: Training",
        f"<!date^{int(T0.timestamp())}^",
        "1h 15m",
        "SFT: epochs 3.0, batch size auto, LR multiplier provider default",
        "DPO: off",
    ):
        assert expected in body, expected
    assert "openpipe:support-bot-v2" not in body


def test_card_settings_for_dpo_and_gemini() -> None:
    dpo = make_job(
        spec=openpipe_spec(
            dataset_id="ds-1",
            slug="pref",
            provider=Provider.OPENAI,
            base_model="gpt-4o-mini-2024-07-18",
            enable_sft=False,
            enable_preference=True,
            preference=PreferenceParams(beta=0.1, batch_size=8),
        )
    )
    body = all_text(status_card(dpo, T0))
    assert "SFT: off" in body
    assert "DPO: epochs provider default, beta 0.1, LR multiplier provider default, batch size 8" in body
    assert "OpenAI" in body
    gemini = make_job(
        spec=openpipe_spec(
            dataset_id="ds-1",
            slug="gem",
            provider=Provider.GEMINI,
            base_model="models/gemini-1.5-flash-001-tuning",
            sft=SftParams(learning_rate=0.001),
        )
    )
    body = all_text(status_card(gemini, T0))
    assert "learning rate 0.001" in body and "DPO" not in body and "Google Gemini" in body


def test_card_terminal_states() -> None:
    done_at = T0 + timedelta(hours=2, minutes=5)
    deployed = make_job(status="DEPLOYED", tracking=False, finished_at=done_at)
    body = all_text(status_card(deployed, done_at + timedelta(days=3)))
    assert ":white_check_mark: Deployed" in body
    assert "`openpipe:support-bot-v2`" in body and "curl " in body
    assert "2h 05m total" in body  # elapsed stops when the job finished
    assert "$OPENPIPE_API_KEY" in body

    failed = make_job(status="ERROR", tracking=False, finished_at=done_at, error_message="CUDA out of memory")
    body = all_text(status_card(failed, done_at))
    assert ":x: Failed" in body and "CUDA out of memory" in body

    expired = make_job(status="TRAINING", tracking=False)
    body = all_text(status_card(expired, T0 + timedelta(hours=80)))
    assert "No longer followed" in body and ":zzz:" in body


def test_card_curl_example_uses_the_configured_base_url() -> None:
    done_at = T0 + timedelta(hours=2)
    deployed = make_job(status="DEPLOYED", tracking=False, finished_at=done_at)
    default = all_text(status_card(deployed, done_at))
    assert "curl https://api.openpipe.ai/api/v1/chat/completions " in default

    rendered = status_card(deployed, done_at, "http://127.0.0.1:8765/api/v1/")
    assert_valid(rendered)
    body = all_text(rendered)
    assert "curl http://127.0.0.1:8765/api/v1/chat/completions " in body
    assert "api.openpipe.ai" not in body and "$OPENPIPE_API_KEY" in body


def test_card_base_url_never_shows_credentials() -> None:
    deployed = make_job(status="DEPLOYED", tracking=False, finished_at=T0)
    base = f"https://bot:{SECRET}@proxy.example.com/openpipe/api/v1?token={SECRET}#frag"
    body = all_text(status_card(deployed, T0, base))
    assert "curl https://proxy.example.com/openpipe/api/v1/chat/completions " in body
    assert SECRET not in body and "bot:" not in body and "frag" not in body


def test_unknown_status_is_shown_as_is() -> None:
    job = make_job(status="WARMING_UP")
    assert "WARMING_UP" in all_text(status_card(job, T0))
    assert "WARMING_UP" in status_shown(job) and job.lifecycle is Lifecycle.UNKNOWN
    reply = transition_reply(job, moved("WARMING_UP"), T0, mention_requester=False)
    assert_valid(reply)
    assert "WARMING_UP" in reply[0] and ":grey_question:" in all_text(reply)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("QUEUED", "Queued — waiting for a GPU"),
        ("PROVISIONING", "Provisioning"),
        ("TRAINING", "Training started"),
        ("DEPLOYED", "Deployed"),
        ("ERROR", "Training failed"),
        ("DEPRECATED", "Deprecated"),
    ],
)
def test_transition_reply_words(status: str, words: str) -> None:
    job = make_job(status=status, error_message="boom" if status == "ERROR" else None)
    event = moved(status, at=T0 + timedelta(minutes=12))
    rendered = transition_reply(job, event, T0 + timedelta(hours=5), mention_requester=False)
    assert_valid(rendered)
    assert words in rendered[0]
    assert "12m 00s after submission" in all_text(rendered)  # from the transition time, not delivery time
    assert "<@U0ALICE>" not in all_text(rendered)


def test_terminal_replies_mention_and_explain() -> None:
    job = make_job(status="DEPLOYED")
    text, blocks = transition_reply(job, moved("DEPLOYED", old="TRAINING"), T0, mention_requester=True)
    assert text.startswith("<@U0ALICE>")
    body = json.dumps(blocks, ensure_ascii=False)
    assert "openpipe:support-bot-v2" in body and "chat/completions" in body

    failed = make_job(status="ERROR", error_message="from the row")
    event = moved("ERROR", error="Dataset has no entries")
    text, _ = transition_reply(failed, event, T0, mention_requester=True)
    assert "<@U0ALICE>" in text and "Dataset has no entries" in text


def test_backend_text_cannot_ping_or_leak() -> None:
    hostile = f"<!channel> failed with key {SECRET} see <https://evil.example|here> & Bearer abc.def-123"
    job = make_job(status="ERROR", error_message=hostile, dataset_name="<!here> data")
    rendered = [
        status_card(job, T0),
        transition_reply(job, moved("ERROR", error=hostile), T0, mention_requester=True),
        rejected_message(job, Rejected(message=hostile, issues=(hostile,))),
    ]
    for item in rendered:
        assert_valid(item)
        body = all_text(item)
        assert SECRET not in body and "abc.def-123" not in body
        assert "<!channel>" not in body and "<!here>" not in body and "<https://evil" not in body
        assert "&lt;!channel&gt;" in body


def test_long_values_are_clipped_to_slack_limits() -> None:
    long = "x" * 5000
    job = make_job(status="ERROR", error_message=long, dataset_name=long)
    assert_valid(status_card(job, T0))
    assert_valid(transition_reply(job, moved("ERROR"), T0, mention_requester=True))
    assert_valid(rejected_message(job, Rejected(message=long, issues=(long,) * 100)))


def test_rejected_message_has_reason_issues_and_button() -> None:
    job = make_job(status=None, lifecycle=Lifecycle.REJECTED, tracking=False)
    event = Rejected(message="Input validation failed", issues=("slug: taken", "epochs: > 0"))
    rendered = rejected_message(job, event)
    assert_valid(rendered)
    text, blocks = rendered
    assert "Input validation failed" in text and "slug: taken" in text
    body = json.dumps(blocks, ensure_ascii=False)
    assert "• slug: taken" in body and "• epochs: &gt; 0" in body
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Edit and retry", "emoji": True},
            "action_id": EDIT_RETRY_ACTION_ID,
            "value": "7",
            "style": "primary",
        }
    ]


def test_expired_reply() -> None:
    job = make_job(status="QUEUED", tracking=False)
    rendered = expired_reply(job, Expired(max_age_hours=72.0))
    assert_valid(rendered)
    assert "72 hours" in rendered[0]
    assert "<@U0ALICE>" in all_text(rendered) and "QUEUED" in all_text(rendered)


@pytest.mark.parametrize(
    ("changes", "line", "shown"),
    [
        ({"status": None, "lifecycle": Lifecycle.SUBMITTING}, ":outbox_tray: Submitting", "Submitting"),
        ({"status": None, "lifecycle": Lifecycle.REJECTED, "tracking": False}, ":no_entry: Rejected", "Rejected"),
        ({"status": "PENDING"}, ":hourglass_flowing_sand: Accepted — waiting to be queued", "PENDING"),
        ({"status": "PROVISIONING"}, ":weight_lifter: Provisioning — the trainer is starting", "PROVISIONING"),
        ({"status": "DEPLOYED", "tracking": False}, ":white_check_mark: Deployed", "DEPLOYED"),
        ({"status": "PENDING_DEPRECATION", "tracking": False}, ":white_check_mark: Scheduled for", "PENDING_DEP"),
        ({"status": "DEPRECATED", "tracking": False}, ":wastebasket: Deprecated", "DEPRECATED"),
        # A model that vanished keeps its last status, but the card says what it is now.
        ({"status": "TRAINING", "lifecycle": Lifecycle.GONE, "tracking": False}, ":wastebasket: Deleted", "Deleted"),
        ({"status": "WARMING_UP"}, ":grey_question: WARMING_UP", "WARMING_UP"),
        ({"status": "QUEUED", "tracking": False}, ":zzz: No longer followed", "QUEUED"),
    ],
)
def test_the_lifecycle_picks_the_emoji_and_the_service_status_is_kept(
    changes: dict[str, Any], line: str, shown: str
) -> None:
    job = make_job(**changes)
    assert line in all_text(status_card(job, T0))
    assert status_shown(job).startswith(shown)  # `/finetune status` and `list` show the service's own word


def test_a_job_of_a_backend_without_a_status_table_shows_the_service_words() -> None:
    job = make_job(backend="elsewhere", status="running", lifecycle=Lifecycle.RUNNING)
    assert ":weight_lifter: running" in all_text(status_card(job, T0))
    event = Transition(
        from_status="queued",
        to_status="running",
        from_lifecycle=Lifecycle.QUEUED,
        to_lifecycle=Lifecycle.RUNNING,
        at=T0,
    )
    assert "Status is now running" in transition_reply(job, event, T0, mention_requester=False)[0]
