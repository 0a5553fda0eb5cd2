"""The Bolt app: `create_app(runtime)` registers every listener on one App used by both run modes."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from slack_bolt import App, BoltResponse

from slackbot import listeners

if TYPE_CHECKING:
    from slackbot.runtime import Runtime

log = logging.getLogger("slackbot.app")


def create_app(runtime: Runtime, *, token_verification: bool = True) -> App:
    settings = runtime.settings
    with _env_token_hidden():
        app = App(
            client=runtime.slack,
            signing_secret=settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else "",
            # ack() answers Slack at once; the rest of a listener runs after the HTTP response is sent.
            process_before_response=False,
            token_verification_enabled=token_verification,
            logger=logging.getLogger("slackbot.bolt"),
            # Listeners only ack and hand slow work to the runtime's pools, but a burst of users must never wait
            # for a free thread past Slack's 3 s (Bolt answers 404 when ack() comes too late).
            listener_executor=ThreadPoolExecutor(max_workers=64, thread_name_prefix="bolt"),
        )

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> BoltResponse:
        # Never a traceback to the user, never the payload (it may carry what someone typed) in the log.
        log.error("listener failed", exc_info=error, extra={"type": body.get("type") or body.get("command")})
        return BoltResponse(status=500, body="")

    listeners.register(app, runtime)
    return app


@contextlib.contextmanager
def _env_token_hidden() -> Iterator[None]:
    """Bolt falls back to SLACK_BOT_TOKEN from the environment when given no token, then warns that this token
    "will be unused" beside `client` (which already carries it): the fallback is hidden while the App is built."""
    saved = os.environ.pop("SLACK_BOT_TOKEN", None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ["SLACK_BOT_TOKEN"] = saved
