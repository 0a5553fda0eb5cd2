"""manifest.yml: valid under Slack's schema, and declaring exactly what the code listens for and calls."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from slack_sdk import WebClient

from slackbot import ids
from slackbot.backends.declaration import Capabilities

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO.parent / "shared" / "slack" / "manifest.schema.json"

# Web API method → bot scope it needs (docs.slack.dev, each method's "Required scopes").
SCOPES = {
    "chat_postMessage": {"chat:write"},
    "chat_update": {"chat:write"},
    "chat_postEphemeral": {"chat:write"},
    "conversations_join": {"channels:join"},
    "conversations_open": {"im:write"},
    "conversations_replies": {"channels:history", "groups:history", "im:history", "mpim:history"},
    "conversations_history": {"channels:history", "groups:history", "im:history", "mpim:history"},
    "conversations_info": {"channels:read", "groups:read", "im:read", "mpim:read"},
    "usergroups_users_list": {"usergroups:read"},
    "files_upload_v2": {"files:write"},
    "views_open": set(),
    "views_update": set(),
    "views_publish": set(),
    "chat_getPermalink": set(),
    "auth_test": set(),
    "files_info": {"files:read"},  # and the file's url_private_download, with the bot token
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "manifest.yml").read_text("utf-8"))
    return data


def test_manifest_validates_against_slack_schema(manifest: dict[str, Any]) -> None:
    assert SCHEMA.exists(), f"Slack's manifest schema is expected at {SCHEMA}"
    schema = json.loads(SCHEMA.read_text("utf-8"))
    jsonschema.Draft7Validator(schema).validate(manifest)


def test_manifest_declares_exactly_our_entry_points(manifest: dict[str, Any]) -> None:
    features = manifest["features"]
    assert [c["command"] for c in features["slash_commands"]] == [ids.COMMAND]
    assert [(s["callback_id"], s["type"]) for s in features["shortcuts"]] == [(ids.SHORTCUT_FROM_THREAD, "message")]
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True  # modals, buttons
    assert "message_menu_options_url" in settings["interactivity"]  # the dataset picker's options
    assert settings["socket_mode_enabled"] is True
    # The one event: the Home tab opened (published then, with the tab enabled).
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert features["app_home"]["home_tab_enabled"] is True


# Names of ours that look like Web API methods: the chat capability of backends (backends/base.py ServesChat).
NOT_SLACK = {"chat_model", "chat_completions"}


def _methods_called() -> set[str]:
    pattern = re.compile(r"\b((?:chat|conversations|views|usergroups|users|auth|files)_[A-Za-z_0-9]+)\b")
    found: set[str] = set()
    for path in (REPO / "slackbot").rglob("*.py"):
        # Parts below the checkout: the checkout's own folder may be called "backends" too.
        if {"sandbox", "backends"} & set(path.relative_to(REPO).parts):
            continue
        found |= set(pattern.findall(path.read_text("utf-8"))) - NOT_SLACK
    found -= {f.name for f in dataclasses.fields(Capabilities)}  # `caps.chat_completions` is no Slack method
    # Only names of Web API methods (a comment's "chat_completions" is not one).
    return {m for m in found if m in SCOPES or hasattr(WebClient, m)}


def test_scopes_are_the_ones_the_code_needs(manifest: dict[str, Any]) -> None:
    called = _methods_called()
    unknown = called - SCOPES.keys()
    assert not unknown, f"add the scope of {unknown} to SCOPES (and manifest.yml if needed)"
    needed = {"commands"} | set().union(*(SCOPES[m] for m in called))
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == needed
