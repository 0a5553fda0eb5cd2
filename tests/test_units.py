"""Small pieces on their own: the stale-while-revalidate cache, log redaction, the permission rule."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from slackbot.backends.openpipe.catalog import BASE_MODELS
from slackbot.backends.openpipe.fields import Provider
from slackbot.catalog import NotReady, ProjectModels, Refreshing
from slackbot.logs import REDACTED, Redactor, configure_logging
from slackbot.permissions import Permissions
from slackbot.sandbox.waiting import wait_until
from tests.jobs.helpers import model_state


def test_refreshing_cold_miss_waits_only_the_budget() -> None:
    gate = threading.Event()
    calls: list[int] = []

    def slow() -> list[int]:
        calls.append(1)
        gate.wait(5)
        return [1, 2]

    with ThreadPoolExecutor(2) as pool:
        cache: Refreshing[list[int]] = Refreshing(slow, ttl=60, executor=pool)
        started = time.monotonic()
        with pytest.raises(NotReady):
            cache.get(wait=0.1)
        assert time.monotonic() - started < 1.0
        with pytest.raises(NotReady):
            cache.get(wait=0.05)
        assert len(calls) == 1, "one fetch in flight at a time"
        gate.set()
        assert cache.get(wait=2) == [1, 2]


def test_refreshing_serves_stale_while_revalidating() -> None:
    values = iter([["old"], ["new"]])
    with ThreadPoolExecutor(1) as pool:
        cache: Refreshing[list[str]] = Refreshing(lambda: next(values), ttl=60, executor=pool)
        assert cache.get(wait=1) == ["old"]
        cache.invalidate()
        assert cache.get(wait=0) == ["old"]  # at once, while the refresh runs
        deadline = time.monotonic() + 2
        while cache.get(wait=0) != ["new"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert cache.get(wait=0) == ["new"]


def test_refreshing_cold_error_is_raised() -> None:
    def broken() -> list[str]:
        raise RuntimeError("backend down")

    with ThreadPoolExecutor(1) as pool:
        cache: Refreshing[list[str]] = Refreshing(broken, ttl=60, executor=pool)
        with pytest.raises(RuntimeError, match="backend down"):
            cache.get(wait=1)


def test_refreshing_recent_does_not_wait_for_a_refresh_that_cannot_make_it() -> None:
    """A submission may wait `wait` seconds for a fresher list; when the last fetch took longer than that, the
    wait would buy nothing, so the caller hears NotReady at once (and uses the cached list) while the refresh runs
    in the background. A fetch known to be quick is waited for."""
    delay = {"seconds": 0.3}
    fetched: list[float] = []

    def fetch() -> list[float]:
        time.sleep(delay["seconds"])
        fetched.append(time.monotonic())
        return list(fetched)

    with ThreadPoolExecutor(1) as pool:
        cache: Refreshing[list[float]] = Refreshing(fetch, ttl=60, executor=pool)
        assert len(cache.recent(max_age=10, wait=2)) == 1  # cold: waited for
        started = time.monotonic()
        with pytest.raises(NotReady):
            cache.recent(max_age=0, wait=0.1)  # the last fetch took 0.3 s > 0.1 s
        assert time.monotonic() - started < 0.05, "gave up at once"
        wait_until(lambda: len(fetched) == 2, 5)  # …while the refresh it started ran in the background
        delay["seconds"] = 0.0
        assert len(cache.recent(max_age=0, wait=1)) == 3  # 0.3 s < 1 s: worth waiting for, and fresh
        assert len(cache.recent(max_age=0, wait=0.1)) == 4  # the last fetch was quick: waited for too


def test_refreshing_prefetch_refreshes_ahead_of_the_ttl() -> None:
    count = iter(range(100))
    with ThreadPoolExecutor(1) as pool:
        cache: Refreshing[int] = Refreshing(lambda: next(count), ttl=60, executor=pool)
        assert cache.get(wait=1) == 0
        cache.prefetch()  # younger than the TTL: nothing
        cache.prefetch(max_age=30)  # younger than 30 s: nothing
        time.sleep(0.05)
        assert cache.get(wait=0) == 0
        cache.prefetch(max_age=0.01)  # older than that: refreshed in the background
        wait_until(lambda: cache.cached() == 1, 5)


def test_project_models_are_indexed_once() -> None:
    listed = BASE_MODELS[Provider.OPENPIPE][0]
    models = [model_state("a", "DEPLOYED"), model_state("b", "TRAINING"), model_state(listed, "DEPLOYED")]
    index = ProjectModels.of(models, BASE_MODELS[Provider.OPENPIPE])
    assert index.slugs == {"a", "b", listed}
    assert index.deployed == ("a",)


def test_redactor_hides_known_secrets_and_token_shapes() -> None:
    redact = Redactor(["s3cr3t-signing-value"])
    text = redact(
        "sig s3cr3t-signing-value token xoxb-123-456-abc app xapp-1-A-2 key opk_live_abcdef123 "
        "auth Bearer anything-here ok"
    )
    for leaked in ("s3cr3t-signing-value", "xoxb-123", "xapp-1", "opk_live", "anything-here"):
        assert leaked not in text
    assert text.count(REDACTED) == 5 and text.endswith(" ok")


def test_logging_is_one_json_line_per_event_and_redacted() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", ["very-secret-value"], stream=stream)
    try:
        logging.getLogger("slackbot.test").info(
            "posted with very-secret-value", extra={"team": "T1", "job_id": 7, "slug": "s"}
        )
        logging.getLogger("httpx").warning("GET https://x Authorization: Bearer xoxb-leak-1")
    finally:
        configure_logging("WARNING", "text", [])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["event"] == f"posted with {REDACTED}"
    assert (first["team"], first["job_id"], first["slug"]) == ("T1", 7, "s")
    assert "xoxb-leak" not in lines[1]


@pytest.mark.parametrize(
    ("rule", "user", "channel", "allowed"),
    [
        ({}, "U1", "C1", True),
        ({"users": ["U1"]}, "U1", "C9", True),
        ({"users": ["U1"]}, "U2", "C1", False),
        ({"channels": ["C1"]}, "U2", "C1", True),
        ({"channels": ["C1"]}, "U2", "C2", False),
        ({"channels": ["C1"], "users": ["U1"]}, "U1", "C2", False),  # both rules must pass
        ({"usergroups": ["S1"]}, "U3", "C1", True),
        ({"usergroups": ["S1"]}, "U4", "C1", False),
    ],
)
def test_permission_rule(rule: dict[str, list[str]], user: str, channel: str, allowed: bool) -> None:
    permissions = Permissions(**rule, group_members=lambda group: {"U3"} if group == "S1" else set())
    decision = permissions.check(user, channel)
    assert decision.allowed is allowed
    assert decision.allowed or decision.reason
