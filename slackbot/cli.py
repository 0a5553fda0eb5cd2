"""Command line: `slackbot run [--http --port N] | check | demo | sandbox <backend> --port N`.

Configuration problems end the program with one readable line naming every setting to fix (exit 2), never a
traceback; Slack not answering at start is exit 3 in Socket Mode (HTTP mode waits for it), and so is a database
server that cannot be reached.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace

from pydantic import SecretStr

from slackbot import preflight
from slackbot.backends.registry import declaration, declared
from slackbot.retry import backoff
from slackbot.settings import (
    Settings,
    SettingsError,
    backend_problems,
    describe,
    load_settings,
    read_settings,
    redact_url,
    required_problems,
    setting_names,
    url_secrets,
)

log = logging.getLogger("slackbot.cli")

# Slack waits on the listeners' acks; nobody waits on the background threads (creates, deliveries, ticks), yet
# Python hands the interpreter to a waiting thread only once per switch interval (5 ms by default). A shorter
# one lets an ack in sooner while that work runs (figures in benchmarks/README.md, "Ack latency").
SWITCH_INTERVAL_SECONDS = 0.001


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slackbot", description="Start and follow fine-tunes from Slack.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the bot (Socket Mode by default)")
    run.add_argument("--http", action="store_true", help="serve Slack's HTTP requests at /slack/events")
    run.add_argument("--port", type=int, default=3000, help="HTTP port (with --http; default 3000)")
    run.add_argument("--host", default="0.0.0.0", help="HTTP bind address (with --http)")
    sub.add_parser("check", help="check the configuration: Slack tokens, each backend's key, database")
    demo = sub.add_parser(
        "demo",
        help="a whole fine-tune played offline in seconds, as Slack shows it (Together by default)",
        description="A whole fine-tune played offline in seconds, as Slack shows it: /finetune, the form, a field "
        "error, the price, the request, the card and its thread, against local Slack and Together stand-ins.",
    )
    demo.add_argument(
        "--backend",
        choices=["together", "openpipe"],
        default="together",
        help="the service the story runs against (default together; openpipe: an OpenPipe-compatible service)",
    )
    demo.add_argument("--fail", action="store_true", help="a job that fails, with the service's reason in its thread")
    sandbox = sub.add_parser("sandbox", help="run a local stand-in service")
    sandbox.add_argument("service", choices=sandboxed())
    sandbox.add_argument("--port", type=int, default=8787)
    sandbox.add_argument("--step-seconds", type=float, default=30.0, help="seconds per training status step")
    sandbox.add_argument("--budget", type=float, default=100.0, help="together: dollars an estimate may reach")
    check_file = sub.add_parser("validate", help="check a JSONL dataset file against a backend's format")
    check_file.add_argument("file")
    check_file.add_argument("--backend", required=True, help="the backend whose format to check, e.g. openpipe")
    check_file.add_argument("--method", choices=["sft", "dpo"], default="sft", help="training method (default sft)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "run":
            return _run(_settings_for_run(http=args.http), http=args.http, host=args.host, port=args.port)
        if args.command == "check":
            from slackbot.check import run_checks

            return run_checks(*read_settings())
        if args.command == "demo":
            from slackbot.demo import run_demo

            return run_demo(backend=args.backend, fail=args.fail)
        if args.command == "sandbox":
            return _sandbox(args.service, args.port, args.step_seconds, args.budget)
        if args.command == "validate":
            from slackbot.datasets.command import run_validate

            return run_validate(args.file, args.backend, args.method)
    except SettingsError as exc:
        print(f"slackbot: {exc}", file=sys.stderr)
        return 2
    except SlackUnreachable as exc:
        print(f"slackbot: {exc}", file=sys.stderr)
        return 3
    return 2


class SlackUnreachable(Exception):
    """Slack (or the database) did not answer at start: network, DNS, timeout, a 5xx. Exit code 3."""


# HTTP mode waits for Slack at boot: 1, 2, 4 ... seconds between attempts, at most this long.
MAX_BACKOFF_SECONDS = 30.0


def _settings_for_run(*, http: bool) -> Settings:
    """Every missing or malformed setting `run` needs, in one `SettingsError` (nothing is started before)."""
    settings, problems = read_settings()
    mode = "SLACK_SIGNING_SECRET" if http else "SLACK_APP_TOKEN"
    keys = [d.settings.api_key for d in declared()]
    for problem in required_problems(settings, "SLACK_BOT_TOKEN", mode) + backend_problems(settings, keys):
        if problem.missing and problem.name == "SLACK_APP_TOKEN":
            problem = replace(
                problem, text="is not set (Socket Mode; `slackbot run --http` needs SLACK_SIGNING_SECRET)"
            )
        elif problem.missing and problem.name == "SLACK_SIGNING_SECRET":
            problem = replace(problem, text="is not set (needed with --http)")
        problems.append(problem)
    if problems:
        order = setting_names()
        problems.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
        raise SettingsError(describe(problems))
    return settings


def _run(settings: Settings, *, http: bool, host: str, port: int) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from slackbot.app import create_app
    from slackbot.logs import configure_logging
    from slackbot.runtime import Runtime

    # Every secret setting (the Slack tokens and each backend's key) and the credentials in every URL.
    values = vars(settings).values()
    secrets = [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
    urls = [settings.slack_api_url, settings.database_url]
    urls += [str(getattr(settings, d.settings.base_url.lower())) for d in declared()]
    secrets += url_secrets(*urls)
    configure_logging(settings.log_level, settings.log_format, secrets)
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    stop = threading.Event()
    _on_sigterm(stop.set)
    # Before the database or anything else: a failing start leaves nothing behind and says one thing.
    if not _wait_for_slack(settings, retry=http, stop=stop):
        log.info("stopped before Slack could be reached")
        return 0
    try:
        runtime = Runtime.build(settings)
    except SQLAlchemyError as exc:  # the database server is down or refuses us: one line, as for Slack
        raise SlackUnreachable(
            f"cannot use the database at DATABASE_URL ({redact_url(settings.database_url)}: "
            f"{type(exc).__name__}); check the URL and that the server runs, then start again."
        ) from None
    try:
        app = create_app(runtime)
    except Exception as exc:  # Bolt's own auth.test: Slack changed its mind since the probe a moment ago
        runtime.stop()
        answer = preflight.check_bot_token(settings)
        problem = answer.problem or f"the Slack app could not start ({type(exc).__name__})"
        raise (SlackUnreachable if answer.transient else SettingsError)(problem) from None
    runtime.start()
    try:
        if http:
            from slackbot.web import HttpServer

            server = HttpServer(app, runtime.health, host=host, port=port)
            _on_sigterm(server.stop)
            if not stop.is_set():  # a SIGTERM while the runtime was being built
                server.serve_forever()
        else:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            assert settings.slack_app_token is not None
            handler = SocketModeHandler(app, settings.slack_app_token.get_secret_value())
            try:
                handler.connect()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
            except Exception as exc:  # apps.connections.open refused the app-level token, or no answer
                handler.close()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
                answer = preflight.failure(settings, "SLACK_APP_TOKEN", exc)
                raise (SlackUnreachable if answer.transient else SettingsError)(_final(answer)) from None
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


def _wait_for_slack(settings: Settings, *, retry: bool, stop: threading.Event) -> bool:
    """True once Slack takes the bot token; False if stopped while waiting. A refused token is a SettingsError.

    HTTP mode waits for an unreachable Slack (a container often starts before its network or DNS is ready, and
    its supervisor expects it to stay up); Socket Mode, what `make run` starts, says so at once and exits.
    """
    attempt = 0
    while True:
        attempt += 1
        answer = preflight.check_bot_token(settings)
        if answer.ok:
            return True
        if not answer.transient:
            raise SettingsError(answer.problem + ".")
        if not retry:
            raise SlackUnreachable(_final(answer))
        delay = backoff(attempt, base=1.0, cap=MAX_BACKOFF_SECONDS)
        log.warning(f"{answer.problem}; retrying in {delay:g} s", extra={"attempt": attempt})
        if stop.wait(delay):
            return False


def _final(answer: preflight.SlackAnswer) -> str:
    if answer.transient:
        return answer.problem + "; check the URL and this machine's network, then start again."
    return answer.problem + "."


def _on_sigterm(callback: Callable[[], object]) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: callback())


def sandboxed() -> list[str]:
    """The declared backends that ship a local stand-in (`slackbot/sandbox/<name>_api.py`)."""
    return [d.name for d in declared() if importlib.util.find_spec(f"slackbot.sandbox.{d.name}_api") is not None]


def _sandbox(name: str, port: int, step_seconds: float, budget: float) -> int:
    """Run backend `name`'s local stand-in, taking the key in that backend's `*_API_KEY` (as the bot does)."""
    from slackbot.logs import configure_logging

    found = declaration(name)
    assert found is not None
    module = importlib.import_module(f"slackbot.sandbox.{name}_api")
    settings = load_settings()
    setting = found.settings.api_key
    given = getattr(settings, setting.lower())
    fallback = f"{name}_local_sandbox"
    key = given.get_secret_value() if isinstance(given, SecretStr) and given.get_secret_value().strip() else fallback
    configure_logging(settings.log_level, "text", [key])
    if key == fallback:
        print(f"{setting} is not set: the local {found.display_name} accepts the key {fallback}", file=sys.stderr)
    options = {"budget": budget} if "budget" in inspect.signature(module.serve_forever).parameters else {}
    module.serve_forever(key, port, step_seconds, **options)
    return 0
