"""Can Slack be reached, and does it take our tokens? Asked once before anything else starts.

`slackbot run` and `slackbot check` both ask here, so a network failure (DNS, refused, timeout, Slack's own 5xx)
is never reported as a refused token, and a refused token always shows Slack's own error code.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slackbot.settings import Settings, redact_url

# slack_sdk logs every failed request at ERROR level: a failed probe is reported by us, in one line, instead.
_quiet = logging.getLogger("slackbot.preflight.sdk")
_quiet.propagate = False
_quiet.addHandler(logging.NullHandler())

_BOT_TOKEN_ADVICE = {
    "invalid_auth": "copy the Bot User OAuth Token (xoxb-...) from OAuth & Permissions again",
    "not_authed": "copy the Bot User OAuth Token (xoxb-...) from OAuth & Permissions again",
    "account_inactive": "the app was uninstalled or its workspace deactivated: reinstall it and copy the new token",
    "token_revoked": "the token was revoked: reinstall the app and copy the new bot token",
    "token_expired": "the token expired: reinstall the app and copy the new bot token",
    "not_allowed_token_type": "that is not a bot token: use the Bot User OAuth Token (xoxb-...)",
}
_APP_TOKEN_ADVICE = {
    "invalid_auth": "create an app-level token (Basic Information, App-Level Tokens) and copy it again",
    "not_authed": "create an app-level token (Basic Information, App-Level Tokens) and copy it again",
    "not_allowed_token_type": "set it to an app-level token with connections:write (starts with xapp-), "
    "not the bot token",
    "missing_scope": "give the app-level token the connections:write scope",
    "token_revoked": "the token was revoked: create a new app-level token",
}


@dataclass(frozen=True)
class SlackAnswer:
    """What one probe found: `ok`, or a one-line `problem` and whether waiting could cure it (`transient`)."""

    ok: bool
    problem: str = ""
    transient: bool = False
    data: dict[str, Any] = field(default_factory=dict)


def quiet_client(settings: Settings, token: str) -> WebClient:
    """A client that tries once (no retry handlers) and logs nothing: the caller reports the outcome."""
    return WebClient(
        token=token, base_url=settings.slack_api_url, timeout=settings.slack_timeout_seconds, logger=_quiet
    )


def check_bot_token(settings: Settings) -> SlackAnswer:
    """`auth.test` with SLACK_BOT_TOKEN (which must be set)."""
    assert settings.slack_bot_token is not None
    client = quiet_client(settings, settings.slack_bot_token.get_secret_value())
    return _call(settings, "SLACK_BOT_TOKEN", lambda: client.auth_test().data)


def check_app_token(settings: Settings) -> SlackAnswer:
    """`apps.connections.open` with SLACK_APP_TOKEN (which must be set): what Socket Mode does first."""
    assert settings.slack_app_token is not None
    token = settings.slack_app_token.get_secret_value()
    client = quiet_client(settings, token)
    return _call(settings, "SLACK_APP_TOKEN", lambda: client.apps_connections_open(app_token=token).data)


def unreachable(settings: Settings, reason: str) -> str:
    return f"cannot reach Slack at SLACK_API_URL ({redact_url(settings.slack_api_url)}: {reason})"


def network_reason(exc: BaseException, timeout: float) -> str | None:
    """Why a request never got an answer, in a few words; None when `exc` is not a network failure."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, urllib.error.URLError) and not isinstance(cause, urllib.error.HTTPError):
            reason = cause.reason
            cause = reason if isinstance(reason, BaseException) else None
            if cause is None:
                return str(reason)
            continue
        if isinstance(cause, socket.gaierror):
            return "host not found"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, TimeoutError | socket.timeout):
            return f"no answer within {timeout:g} s"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed ({cause.reason or type(cause).__name__})"
        if isinstance(cause, http.client.RemoteDisconnected | ConnectionResetError | http.client.HTTPException):
            return "the connection was closed without an answer"
        if isinstance(cause, OSError):
            return cause.strerror or type(cause).__name__
        cause = cause.__cause__ or cause.__context__
    return None


def failure(settings: Settings, name: str, exc: BaseException) -> SlackAnswer:
    """What a failed call with the token in setting `name` means: Slack's refusal, or no answer from Slack."""
    advice = _APP_TOKEN_ADVICE if name == "SLACK_APP_TOKEN" else _BOT_TOKEN_ADVICE
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        if status == 429 or status >= 500:
            return SlackAnswer(False, unreachable(settings, f"HTTP {status}"), transient=True)
        if status != 200:
            url = redact_url(settings.slack_api_url)
            return SlackAnswer(
                False,
                f"SLACK_API_URL ({url}) answered HTTP {status}, not like Slack's Web API: check the URL "
                "(Slack's is https://slack.com/api/)",
            )
        error = exc.response.get("error") if isinstance(exc.response.data, dict) else None
        error = str(error or "unknown_error")
        hint = advice.get(error, "check the token in your app's settings at api.slack.com")
        return SlackAnswer(False, f"{name} was refused by Slack ({error}): {hint}")
    # Not a network failure we know: its class name is safe to show (its text may carry the URL).
    reason = network_reason(exc, settings.slack_timeout_seconds) or type(exc).__name__
    return SlackAnswer(False, unreachable(settings, reason), transient=True)


def _call(settings: Settings, name: str, call: Callable[[], Any]) -> SlackAnswer:
    try:
        data = call()
    except Exception as exc:
        return failure(settings, name, exc)
    return SlackAnswer(True, data=dict(data) if isinstance(data, dict) else {})
