"""ALLOWED_USERGROUPS never makes a command wait on Slack: members are read in the background, a group Slack has
not answered for yet is said to be unchecked (not "not on the list"), and a 429's Retry-After is honoured."""

from __future__ import annotations

import time
from pathlib import Path

from slackbot import ids
from tests.e2e.harness import Harness

UNCHECKED = "couldn't check your user group membership with Slack just now; try again in a minute"
NOT_LISTED = "not on the list"


def _command(h: Harness, user: str) -> tuple[float, str]:
    started = time.monotonic()
    response = h.driver.slash_command("/finetune", user_id=user)
    assert response.status_code == 200, response.text
    return time.monotonic() - started, response.text


def test_rate_limited_usergroup_lookup_never_delays_the_ack(tmp_path: Path) -> None:
    h = Harness(tmp_path, allowed_usergroups="S0MLTEAM")
    try:
        h.slack.add_usergroup("S0MLTEAM", ["U0BOB"])
        h.slack.fail("usergroups.users.list", status=429, retry_after=5)
        took, text = _command(h, "U0BOB")
        assert took < 1.0, f"ack took {took:.2f} s"  # Slack gives 3 s; the old check slept out the Retry-After
        assert UNCHECKED in text and NOT_LISTED not in text
        h.slack.wait_for("usergroups.users.list")  # the background read, answered with the 429
        # Within the Retry-After: answered at once again, and Slack is not asked again.
        took, text = _command(h, "U0BOB")
        assert took < 1.0 and UNCHECKED in text
        time.sleep(0.3)
        assert len(h.slack.calls_to("usergroups.users.list")) == 1
        assert h.slack.calls_to("views.open") == []
        # Once the Retry-After has passed, Slack answers: members are let in and others told they are not listed.
        h.clock.advance(5)
        assert h.wait(lambda: NOT_LISTED in _command(h, "U0ALICE")[1])
        assert len(h.slack.calls_to("usergroups.users.list")) == 2
        took, text = _command(h, "U0BOB")
        assert took < 1.0 and text == ""
        assert h.driver.wait_for_view()["callback_id"] == ids.VIEW_FINETUNE
    finally:
        h.close()


def test_group_members_are_read_when_the_bot_starts(tmp_path: Path) -> None:
    h = Harness(tmp_path, allowed_usergroups="S0MLTEAM")
    try:
        assert h.slack.calls_to("usergroups.users.list") == []
        h.runtime.start()
        [call] = h.slack.wait_for("usergroups.users.list")
        assert call.args.get("usergroup") == "S0MLTEAM"
        # Read before anyone asked: the first command is answered from it (U0ALICE is seeded in S0MLTEAM).
        assert h.wait(lambda: _command(h, "U0ALICE")[1] == "")
        assert h.driver.wait_for_view()["callback_id"] == ids.VIEW_FINETUNE
    finally:
        h.close()
