"""Command line: `slackbot run [--http --port N] | check | demo | sandbox openpipe --port N`.

Configuration problems end the program with one readable line (exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence

from slackbot.settings import Settings, SettingsError, load_settings

log = logging.getLogger("slackbot.cli")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slackbot", description="Start and follow fine-tunes from Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot (Socket Mode by default)")
    run.add_argument("--http", action="store_true", help="serve Slack's HTTP requests at /slack/events")
    run.add_argument("--port", type=int, default=3000, help="HTTP port (with --http; default 3000)")
    run.add_argument("--host", default="0.0.0.0", help="HTTP bind address (with --http)")
    sub.add_parser("check", help="check the configuration: Slack tokens, OpenPipe key, database")
    demo = sub.add_parser("demo", help="the whole flow offline, against local Slack and OpenPipe stand-ins")
    demo.add_argument("--fail", action="store_true", help="show a job that ends in ERROR")
    sandbox = sub.add_parser("sandbox", help="run a local stand-in service")
    sandbox.add_argument("service", choices=["openpipe"])
    sandbox.add_argument("--port", type=int, default=8787)
    sandbox.add_argument("--step-seconds", type=float, default=30.0, help="seconds per training status step")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(load_settings(), http=args.http, host=args.host, port=args.port)
        if args.command == "check":
            from slackbot.check import run_checks

            return run_checks(load_settings())
        if args.command == "demo":
            from slackbot.demo import run_demo

            return run_demo(fail=args.fail)
        if args.command == "sandbox":
            return _sandbox(args.port, args.step_seconds)
    except SettingsError as exc:
        print(f"slackbot: {exc}", file=sys.stderr)
        return 2
    return 2


def _run(settings: Settings, *, http: bool, host: str, port: int) -> int:
    from slackbot.app import create_app
    from slackbot.logs import configure_logging
    from slackbot.runtime import Runtime

    settings.require("SLACK_BOT_TOKEN", "OPENPIPE_API_KEY", "SLACK_SIGNING_SECRET" if http else "SLACK_APP_TOKEN")
    secrets = [
        s.get_secret_value()
        for s in (
            settings.slack_bot_token,
            settings.slack_signing_secret,
            settings.slack_app_token,
            settings.openpipe_api_key,
        )
        if s is not None
    ]
    configure_logging(settings.log_level, settings.log_format, secrets)
    runtime = Runtime.build(settings)
    try:
        app = create_app(runtime)
    except Exception as exc:  # Bolt's auth.test at start-up: a bad token is a configuration error
        runtime.stop()
        raise SettingsError(f"SLACK_BOT_TOKEN was refused by Slack ({type(exc).__name__}): check the token.") from None
    stop = threading.Event()
    runtime.start()
    try:
        if http:
            from slackbot.web import HttpServer

            server = HttpServer(app, runtime.health, host=host, port=port)
            _on_sigterm(server.stop)
            server.serve_forever()
        else:
            from slack_bolt.adapter.socket_mode import SocketModeHandler
            from slack_sdk.errors import SlackApiError

            assert settings.slack_app_token is not None
            handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
            try:
                handler.connect()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
            except SlackApiError as exc:  # apps.connections.open refused the app-level token
                handler.close()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
                error = exc.response.get("error") or "unknown_error"
                raise SettingsError(
                    f"SLACK_APP_TOKEN was refused by Slack ({error}): set it to an app-level token with "
                    "connections:write (starts with xapp-), not the bot token."
                ) from None
            log.info("connected to Slack (Socket Mode)")
            _on_sigterm(stop.set)
            try:
                stop.wait()
            finally:
                handler.close()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()  # finishes the tick in progress: no job is lost
    return 0


def _on_sigterm(callback: Callable[[], object]) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: callback())


def _sandbox(port: int, step_seconds: float) -> int:
    from slackbot.logs import configure_logging
    from slackbot.sandbox.openpipe_api import serve_forever

    settings = load_settings()
    key = settings.openpipe_api_key.get_secret_value() if settings.openpipe_api_key else "opk_local_sandbox"
    configure_logging(settings.log_level, "text", [key])
    if settings.openpipe_api_key is None:
        print("OPENPIPE_API_KEY is not set: the local OpenPipe accepts the key opk_local_sandbox", file=sys.stderr)
    serve_forever(key, port, step_seconds)
    return 0
