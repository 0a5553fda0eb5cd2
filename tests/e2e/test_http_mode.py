"""`slackbot run --http` as a real process: signed requests, /healthz, the scheduler following a job to the end,
faults on the way, a clean SIGTERM — and not one secret in its logs or in anything it posted."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from slackbot import ids
from slackbot.sandbox.clock import ManualClock
from slackbot.sandbox.driver import SlackDriver
from slackbot.sandbox.openpipe_api import LocalOpenPipe
from slackbot.sandbox.slack_api import LocalSlack
from slackbot.sandbox.waiting import wait_until

SECRET = "http-mode-signing-secret-abcdef123456"
TOKEN = "xoxb-http-mode-token-987654321"
KEY = "opk_http_mode_key_5551234abcd"
UNSIGNED = "sent-by-a-stranger-93d1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _replies_at_least(slack: LocalSlack, ts: str, count: int) -> bool:
    return len(slack.thread("C0GENERAL", ts)) >= count


def test_http_mode_process_end_to_end(tmp_path: Path) -> None:
    clock = ManualClock(start=time.time())
    with LocalOpenPipe(KEY, clock=clock, step_seconds=60) as openpipe, LocalSlack(bot_token=TOKEN) as slack:
        openpipe.add_dataset("Process dataset", entries=42)
        port = _free_port()
        log_path = tmp_path / "bot.log"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENPIPE_"))},
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.url,
            "OPENPIPE_API_KEY": KEY,
            "OPENPIPE_BASE_URL": openpipe.url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
            "POLL_INTERVAL_SECONDS": "0.3",
            "LOG_LEVEL": "DEBUG",
        }
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "slackbot", "run", "--http", "--port", str(port), "--host", "127.0.0.1"],
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            health = wait_until(
                lambda: (r := httpx.get(f"{base}/healthz", timeout=1)).status_code == 200 and r.json(),
                15,
                ignoring=(httpx.HTTPError,),
            )
            assert health == {"ok": True, "database": True, "scheduler": True}

            driver = SlackDriver(f"{base}/slack/events", SECRET, slack)
            forged = driver.signed_post(f"text={UNSIGNED}", "application/x-www-form-urlencoded", signature="v0=bad")
            assert forged.status_code == 401
            assert driver.slash_command("/finetune").status_code == 200
            view = driver.wait_for_view()
            options = driver.block_suggestion(view["id"], ids.ACTION_DATASET, ids.BLOCK_DATASET, "").json()["options"]
            picked = next(o for o in options if o["text"]["text"].startswith("Process dataset"))
            answer = driver.view_submission(
                view["id"],
                {
                    ids.BLOCK_DATASET: picked,
                    ids.BLOCK_SLUG: "from-a-process",
                    "base_model__openpipe": "Qwen/Qwen3-8B",
                },
            )
            assert answer.status_code == 200 and not answer.content, answer.text
            card = wait_until(lambda: [m for m in slack.messages("C0GENERAL") if m.get("user") == slack.bot_user_id])[0]

            # OpenPipe misbehaves for a while; the tracker carries on once it recovers.
            openpipe.inject("GET /models", "status", status=503, times=2)
            openpipe.inject("GET /models", "html", times=1)
            for expected in range(1, 5):  # QUEUED, PROVISIONING, TRAINING, DEPLOYED: wait for each
                clock.advance(60)
                wait_until(functools.partial(_replies_at_least, slack, card["ts"], expected), timeout=30)
            time.sleep(1.0)  # a few more ticks: nothing is told twice
            statuses = [m["text"] for m in slack.thread("C0GENERAL", card["ts"])]
            assert len(statuses) == len(set(statuses)) == 4, statuses
            assert "Deployed" in statuses[-1]
            driver.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=20)
        assert code == 0
        logs = log_path.read_text("utf-8")
        assert "stopped" in logs
        posted = json.dumps([slack.messages(c) for c in ("C0GENERAL",)])
        for secret in (SECRET, TOKEN, KEY):
            assert secret not in logs, "a secret leaked into the logs"
            assert secret not in posted, "a secret leaked into Slack"
        assert len(logs.splitlines()) > 10
        events = [json.loads(line) for line in logs.splitlines()]  # every line is one JSON event
        assert UNSIGNED not in logs, "an unsigned request's body reached the log"
        assert not [e for e in events if "unused" in e["event"]], "Bolt was given the token twice"
