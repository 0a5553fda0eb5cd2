"""The Home view's limits with the most it shows: hostile names stay inert, Slack accepts the view."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from slackbot.blocks.home import HomeRow, home_view
from slackbot.jobs.records import JobRecord
from slackbot.sandbox.slack_views import MAX_VIEW_BLOCKS, validate_view
from slackbot.services.home import MINE_SHOWN, RUNNING_SHOWN
from tests.notify.test_blocks import make_job


def _job(n: int, **kw: object) -> JobRecord:
    hostile = {"slug": f"<!channel>-{'x' * 200}-{n}", "base_model": "<@U0BOB> @here " + "m" * 500}
    return make_job(id=n, **{**hostile, **kw})


def test_a_full_home_tab_is_valid_and_inert() -> None:
    now = datetime(2026, 11, 29, tzinfo=UTC)
    mine = [
        HomeRow(_job(n), link="https://x.slack.com/archives/C1/p1?a=1&b=2", try_it=True, cancel=True)
        for n in range(1, MINE_SHOWN + 1)
    ]
    running = [HomeRow(_job(100 + n), try_it=True) for n in range(RUNNING_SHOWN)]
    view = home_view(mine, running, services=["OpenPipe"], now=now)
    validate_view(view)
    assert len(view["blocks"]) <= MAX_VIEW_BLOCKS
    text = json.dumps(view)
    assert "<!channel>" not in text and "<@U0BOB>" not in text and "@here" not in text
    assert "a=1&amp;b=2|thread>" in text
    for block in view["blocks"]:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= 3000
