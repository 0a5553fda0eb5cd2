"""Waiting, in real time, for something another thread or process does (a listener runs after its ack)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 5.0,
    *,
    interval: float = 0.01,
    ignoring: tuple[type[BaseException], ...] = (),
) -> T:
    """The first truthy result of `predicate`, polled every `interval`; AssertionError after `timeout`.

    Exceptions of the `ignoring` types count as "not yet" (e.g. a server that is still starting).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = predicate()
            if result:
                return result
        except ignoring:
            pass  # not yet
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout:g} s")
        time.sleep(interval)
