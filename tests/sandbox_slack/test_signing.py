"""The driver signs like Slack: SignatureVerifier and Bolt accept its requests and reject forgeries."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import httpx
from slack_bolt import Ack
from slack_sdk.signature import SignatureVerifier

from slackbot.sandbox.driver import SlackDriver
from slackbot.sandbox.slack_api import LocalSlack
from tests.sandbox_slack.conftest import SIGNING_SECRET, BoltApp


def _capturing_driver(slack: LocalSlack, seen: list[httpx.Request]) -> SlackDriver:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    http = httpx.Client(transport=httpx.MockTransport(answer))
    return SlackDriver("http://bot.invalid/slack/events", SIGNING_SECRET, slack, http=http)


def test_signature_verifies_and_tampering_breaks_it(slack: LocalSlack) -> None:
    seen: list[httpx.Request] = []
    with _capturing_driver(slack, seen) as driver:
        driver.slash_command(text="go")
    [request] = seen
    body = request.content.decode()
    timestamp = request.headers["X-Slack-Request-Timestamp"]
    signature = request.headers["X-Slack-Signature"]
    verifier = SignatureVerifier(SIGNING_SECRET)
    assert signature.startswith("v0=")
    assert verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    assert not verifier.is_valid(body=body.replace("go", "no"), timestamp=timestamp, signature=signature)
    assert not SignatureVerifier("other-secret").is_valid(body=body, timestamp=timestamp, signature=signature)
    form = parse_qs(body)
    assert set(form) >= {
        "token",
        "team_id",
        "team_domain",
        "channel_id",
        "channel_name",
        "user_id",
        "user_name",
        "command",
        "text",
        "api_app_id",
        "response_url",
        "trigger_id",
    }


def test_bolt_accepts_signed_and_rejects_forged(driver: SlackDriver, bolt: BoltApp) -> None:
    @bolt.app.command("/finetune")
    def command(ack: Ack) -> None:
        ack()

    body = "command=%2Ffinetune&text=&user_id=U0ALICE&team_id=T0LOCAL&channel_id=C0GENERAL&trigger_id=1.2.3"
    form = "application/x-www-form-urlencoded"
    assert driver.signed_post(body, form).status_code == 200
    assert driver.signed_post(body, form, signature="v0=" + "0" * 64).status_code == 401
    assert driver.signed_post(body, form, omit_headers=True).status_code == 401
    stale = int(time.time()) - 10 * 60
    assert driver.signed_post(body, form, timestamp=stale).status_code == 401
