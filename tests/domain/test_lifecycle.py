"""The neutral lifecycle and OpenPipe's mapping to it: every status OpenPipe documents, and any it adds later."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from slackbot.backends.openpipe.statuses import OPENPIPE_STATUSES, openpipe_lifecycle
from slackbot.backends.openpipe.wire import ModelStatus
from slackbot.domain.lifecycle import Lifecycle
from tests.openpipe.conftest import spec_path

ROOT = Path(__file__).resolve().parents[2]

# What each documented OpenPipe status means to the bot (decisions in backends/openpipe/statuses.py).
EXPECTED = {
    "PENDING": Lifecycle.QUEUED,
    "QUEUED": Lifecycle.QUEUED,
    "PROVISIONING": Lifecycle.RUNNING,
    "TRAINING": Lifecycle.RUNNING,
    "DEPLOYED": Lifecycle.SUCCEEDED,
    "ERROR": Lifecycle.FAILED,
    "PENDING_DEPRECATION": Lifecycle.SUCCEEDED,
    "DEPRECATED": Lifecycle.GONE,
}


def _contract_statuses() -> set[str]:
    """Every status enum in OpenPipe's published contract."""
    spec = json.loads(spec_path().read_text())
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            values = node.get("enum")
            if isinstance(values, list) and "DEPLOYED" in values:
                found.update(values)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return found


@pytest.mark.parametrize(("status", "lifecycle"), sorted(EXPECTED.items()))
def test_every_openpipe_status_maps_to_its_lifecycle(status: str, lifecycle: Lifecycle) -> None:
    assert openpipe_lifecycle(status) is lifecycle
    state = ModelStatus.model_validate(
        {"id": "m1", "name": "s", "openpipe": {"status": status, "baseModel": "b", "datasetId": "d"}}
    ).to_state()
    assert (state.status, state.lifecycle) == (status, lifecycle)  # the service's string is kept for display
    assert state.is_terminal == lifecycle.is_terminal


def test_the_table_covers_exactly_the_statuses_of_the_contract() -> None:
    contract = _contract_statuses()
    assert contract, "no status enum found in shared/openpipe/openapi.json"
    assert set(OPENPIPE_STATUSES.statuses) == contract == set(EXPECTED)


@pytest.mark.parametrize("status", ["WARMING_UP", "deployed", "", "TRAINING ", "x" * 5000])
def test_a_status_openpipe_adds_later_is_unknown_and_still_followed(status: str) -> None:
    assert openpipe_lifecycle(status) is Lifecycle.UNKNOWN
    assert not Lifecycle.UNKNOWN.is_terminal
    assert OPENPIPE_STATUSES.words(status) is None  # shown as OpenPipe wrote it


def test_no_service_status_maps_to_a_bot_side_state() -> None:
    assert all(not words.lifecycle.is_bot_side for words in OPENPIPE_STATUSES.statuses.values())


def test_terminal_lifecycles() -> None:
    terminal = {value for value in Lifecycle if value.is_terminal}
    assert terminal == {Lifecycle.SUCCEEDED, Lifecycle.FAILED, Lifecycle.CANCELLED, Lifecycle.GONE}
    assert {value for value in Lifecycle if value.is_bot_side} == {Lifecycle.SUBMITTING, Lifecycle.REJECTED}


def test_a_stored_lifecycle_from_a_newer_version_reads_as_unknown() -> None:
    assert Lifecycle.parse("running") is Lifecycle.RUNNING
    assert Lifecycle.parse("hibernating") is Lifecycle.UNKNOWN


def test_the_domain_imports_nothing_of_ours() -> None:
    for path in (ROOT / "slackbot/domain").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            outside = [n for n in names if n.startswith("slackbot") and not n.startswith("slackbot.domain")]
            assert not outside, f"{path.name} imports {outside}"


def test_only_the_openpipe_backend_knows_openpipe_status_strings() -> None:
    """Outside backends/openpipe (and the OpenPipe stand-in, and migrations that froze what old rows meant), no
    code holds an OpenPipe status string: a new backend's statuses then touch only its own folder."""
    allowed = ("backends/openpipe/", "sandbox/", "jobs/migrations/versions/")
    for path in sorted((ROOT / "slackbot").rglob("*.py")):
        relative = path.relative_to(ROOT / "slackbot").as_posix()
        if relative.startswith(allowed):
            continue
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        strings = [
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings
        ]
        # "ERROR" is also a log level (settings, logs): it counts where jobs, messages and listeners are.
        job_code = relative.startswith(("jobs/", "blocks/", "listeners/", "catalog.py"))
        statuses = set(EXPECTED) if job_code else set(EXPECTED) - {"ERROR"}
        assert not set(strings) & statuses, f"{relative} holds an OpenPipe status string"
