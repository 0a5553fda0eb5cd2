"""Retry timing, computed in one place: exponential backoff and a server's Retry-After.

The tracker (a failing project), the notifier (a failed delivery), the OpenPipe client (a retried request),
the usergroup directory and Slack posting (a 429) and start-up (an unreachable Slack) all wait by these rules.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping

# 2**63 times any sane base is past every cap; a larger exponent would overflow the float conversion.
_MAX_EXPONENT = 63


def backoff(
    attempt: int,
    *,
    base: float,
    cap: float,
    rng: random.Random | None = None,
    retry_after: float | None = None,
    retry_after_cap: float | None = None,
) -> float:
    """Seconds to wait before attempt `attempt + 1`, after `attempt` (1, 2, …) consecutive failures.

    `base * 2**(attempt - 1)`, at most `cap`. With `rng`, full jitter: uniform between 0 and that (so that many
    clients failing together do not retry together). A server's `retry_after` is a floor, itself capped by
    `retry_after_cap` (default `cap`) so a hostile or confused server cannot park us for a day.
    """
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    delay = min(cap, base * 2.0**exponent)
    if rng is not None:
        delay = rng.uniform(0, delay)
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap if retry_after_cap is None else retry_after_cap))
    return delay


def parse_retry_after(value: object) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or an HTTP date); None if absent or unreadable.

    A header given as a list (slack_sdk's raw headers) is read from its first value. Never negative.
    """
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_header(headers: Mapping[str, object] | None) -> float | None:
    """The Retry-After of a response's headers, whatever the name's case (httpx's and slack_sdk's both)."""
    for name, value in (headers or {}).items():
        if str(name).lower() == "retry-after":
            return parse_retry_after(value)
    return None
