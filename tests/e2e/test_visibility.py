"""Who sees which job in `/finetune list` and `status`, through signed requests to the real HTTP endpoint.

Jobs of public channels are the workspace's; a job of a private channel, a DM or a group DM shows only to its
requester, and to anyone running the command inside that conversation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from slackbot.backends.openpipe import OpenPipeBackend
from slackbot.backends.openpipe.fields import Provider, openpipe_spec
from slackbot.visibility import TTL_SECONDS
from tests.e2e.harness import OPENPIPE_KEY, Harness

ALICE, BOB = "U0ALICE", "U0BOB"
SECRET = "C0SECRET"  # private, the bot is a member (it was invited)


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[tuple[Harness, str]]:
    """Alice follows three models: one from public #random, one from private #secret, one from her DM."""
    h = Harness(tmp_path)
    try:
        h.slack.add_channel(SECRET, "secret", is_private=True)
        dm = h.slack.workspace.open_im(ALICE).id
        dataset = h.openpipe.add_dataset("Shared", entries=10)
        other = OpenPipeBackend(SecretStr(OPENPIPE_KEY), h.openpipe.url)
        for slug in ("public-model", "secret-model", "dm-model"):
            spec = openpipe_spec(dataset_id=dataset, slug=slug, provider=Provider.OPENPIPE, base_model="Qwen/Qwen3-8B")
            other.create(spec)
        other.close()
        for slug, channel in (("public-model", "C0RANDOM"), ("secret-model", SECRET), ("dm-model", dm)):
            assert "Looking up" in h.command(f"track {slug}", user_id=ALICE, channel_id=channel)
            h.wait(lambda channel=channel: h.bot_messages(channel))
        h.slack.reset_calls()
        yield h, dm
    finally:
        h.close()


def _listed(answer: str) -> set[str]:
    return {slug for slug in ("public-model", "secret-model", "dm-model") if f"`{slug}`" in answer}


def test_others_see_public_jobs_only_and_the_requester_sees_all(jobs: tuple[Harness, str]) -> None:
    h, dm = jobs
    # Bob in a public channel: Alice's job from another public channel, not those from #secret or her DM.
    assert _listed(h.command("list", user_id=BOB, channel_id="C0GENERAL")) == {"public-model"}
    assert "is *PENDING*" in h.command("status public-model", user_id=BOB, channel_id="C0GENERAL")
    nothing = h.command("status no-such-model", user_id=BOB, channel_id="C0GENERAL")
    for hidden in ("secret-model", "dm-model"):
        answer = h.command(f"status {hidden}", user_id=BOB, channel_id="C0GENERAL")
        # Exactly what a slug that does not exist gets: no channel, no requester, no status.
        assert answer == nothing.replace("no-such-model", hidden)
    # Bob inside #secret sees its job there.
    assert _listed(h.command("list", user_id=BOB, channel_id=SECRET)) == {"public-model", "secret-model"}
    assert "is *PENDING*" in h.command("status secret-model", user_id=BOB, channel_id=SECRET)
    # Alice sees her own jobs wherever she asks.
    for channel in ("C0GENERAL", "C0RANDOM", SECRET, dm):
        assert _listed(h.command("list", user_id=ALICE, channel_id=channel)) == {
            "public-model",
            "secret-model",
            "dm-model",
        }
        assert f"<#{dm}>" in h.command("status dm-model", user_id=ALICE, channel_id=channel)


def test_tracking_a_followed_slug_names_its_channel_only_to_those_who_may_see_the_job(
    jobs: tuple[Harness, str],
) -> None:
    h, _ = jobs

    def told(user: str, channel: str, slug: str) -> str:
        before = len(h.slack.calls_to("chat.postEphemeral"))
        assert "Looking up" in h.command(f"track {slug}", user_id=user, channel_id=channel)
        return str(h.slack.wait_for("chat.postEphemeral", before + 1)[before].args["text"])

    assert told(BOB, "C0GENERAL", "secret-model") == "`secret-model` is already followed in a private channel or DM."
    assert told(BOB, "C0GENERAL", "public-model") == "`public-model` is already followed in <#C0RANDOM>."
    assert told(BOB, SECRET, "secret-model") == f"`secret-model` is already followed in <#{SECRET}>."
    assert told(ALICE, "C0GENERAL", "secret-model") == f"`secret-model` is already followed in <#{SECRET}>."


def test_a_list_asks_slack_once_per_channel_and_remembers_for_a_while(jobs: tuple[Harness, str]) -> None:
    h, dm = jobs
    h.command("list", user_id=BOB, channel_id="C0GENERAL")
    asked = sorted(c.args["channel"] for c in h.slack.calls_to("conversations.info"))
    assert asked == sorted(["C0RANDOM", SECRET, dm])
    h.command("list", user_id=BOB, channel_id="C0GENERAL")
    h.command("status public-model", user_id=BOB, channel_id="C0GENERAL")
    assert len(h.slack.calls_to("conversations.info")) == 3
    # #random turns private; once the cache has expired, its job is no longer shown to Bob.
    h.slack.workspace.channels["C0RANDOM"].is_private = True
    h.clock.advance(TTL_SECONDS + 1)
    assert _listed(h.command("list", user_id=BOB, channel_id="C0GENERAL")) == set()
    assert len(h.slack.calls_to("conversations.info")) == 6


def test_a_failed_lookup_hides_the_job_and_is_not_remembered(jobs: tuple[Harness, str]) -> None:
    h, _ = jobs
    # The list asks about Alice's three channels, newest job first: every answer fails.
    h.slack.fail("conversations.info", "internal_error", times=3)
    assert _listed(h.command("list", user_id=BOB, channel_id="C0GENERAL")) == set()
    assert [c.response for c in h.slack.calls_to("conversations.info")] == [
        {"ok": False, "error": "internal_error"}
    ] * 3
    # The next question asks again, and the public job is back.
    assert _listed(h.command("list", user_id=BOB, channel_id="C0GENERAL")) == {"public-model"}
