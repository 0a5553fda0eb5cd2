"""Retry timing in one place (`slackbot.retry`): the backoff every retrying part uses and Retry-After parsing."""

from __future__ import annotations

import email.utils
import random
import time

import httpx
import pytest

from slackbot.retry import backoff, parse_retry_after, retry_after_header


def test_backoff_doubles_from_base_up_to_cap() -> None:
    assert [backoff(n, base=1.0, cap=30.0) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff(0, base=2.0, cap=600.0) == 2.0  # no failure counted yet: the base, not half of it


def test_backoff_survives_any_number_of_failures() -> None:
    # A project failing for weeks counts thousands of failures; 1.0 * 2**2000 does not fit a float.
    with pytest.raises(OverflowError):
        _ = 1.0 * 2**2000
    assert backoff(2000, base=30.0, cap=900.0) == 900.0


def test_full_jitter_stays_between_zero_and_the_exponential() -> None:
    rng = random.Random(7)
    delays = [backoff(4, base=0.5, cap=8.0, rng=rng) for _ in range(200)]
    assert all(0 <= d <= 4.0 for d in delays)
    assert max(delays) - min(delays) > 2.0  # really spread, not a constant


def test_retry_after_is_a_floor_capped_by_its_own_cap() -> None:
    assert backoff(1, base=1.0, cap=60.0, retry_after=12.0) == 12.0
    assert backoff(6, base=1.0, cap=60.0, retry_after=12.0) == 32.0  # the longer of the two
    assert backoff(1, base=1.0, cap=60.0, retry_after=86400.0) == 60.0  # capped by cap by default
    assert backoff(1, base=1.0, cap=60.0, retry_after=86400.0, retry_after_cap=5.0) == 5.0
    jittered = backoff(3, base=1.0, cap=60.0, rng=random.Random(1), retry_after=3.5)
    assert 3.5 <= jittered <= 4.0


def test_parse_retry_after() -> None:
    assert parse_retry_after("2.5") == 2.5
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(["4"]) == 4.0  # slack_sdk's raw headers are lists
    assert parse_retry_after(b"9") == 9.0
    unreadables: list[object] = [None, "", "soon", "nan", "inf", [], True]
    for unreadable in unreadables:
        assert parse_retry_after(unreadable) is None, unreadable
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= (parse_retry_after(future) or 0) <= 31
    assert parse_retry_after(email.utils.formatdate(time.time() - 60, usegmt=True)) == 0.0


def test_retry_after_header_whatever_the_case() -> None:
    assert retry_after_header(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert retry_after_header({"retry-after": ["11"]}) == 11.0
    assert retry_after_header({"RETRY-AFTER": "x"}) is None
    assert retry_after_header({"content-type": "application/json"}) is None
    assert retry_after_header(None) is None
