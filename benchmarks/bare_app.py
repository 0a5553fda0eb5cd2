"""The ack benchmark's baseline, run as its own process: a Bolt App behind the bot's own waitress `HttpServer`
whose listeners only ack — plus, for /finetune, the one views.open the measurement needs (it opens the very
view the bot opened, so payload sizes match) and, for the dataset picker, the very options the bot answered.

`python -m benchmarks.bare_app --port N --slack-url URL --fixture FILE` (FILE: JSON {"view": …, "options": …}).
"""

from __future__ import annotations

import argparse
import json
import signal
from pathlib import Path
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from slackbot import ids
from slackbot.demo import BOT_TOKEN, SIGNING_SECRET
from slackbot.web import HttpServer


def bare_app(slack_url: str, view: dict[str, Any], options: list[dict[str, Any]]) -> App:
    app = App(
        client=WebClient(token=BOT_TOKEN, base_url=slack_url),
        signing_secret=SIGNING_SECRET,
        process_before_response=False,
        token_verification_enabled=False,
    )

    @app.command(ids.COMMAND)
    def command(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=command["trigger_id"], view=view)

    @app.options(ids.ACTION_DATASET)
    def picker(ack: Ack) -> None:
        ack(options=options)

    @app.view(ids.VIEW_FINETUNE)
    def submit(ack: Ack) -> None:
        ack()

    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_app", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slack-url", required=True)
    parser.add_argument("--fixture", type=Path, required=True)
    args = parser.parse_args(argv)
    fixture = json.loads(args.fixture.read_text(encoding="utf-8"))
    app = bare_app(args.slack_url, fixture["view"], fixture["options"])
    server = HttpServer(app, lambda: {"ok": True}, host="127.0.0.1", port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
