"""Clocks for the local stand-ins: tests advance a `ManualClock` instead of sleeping."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (or since any fixed origin)."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that only moves when told to; safe to advance from a test while a server thread reads it."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        with self._lock:
            self._now += seconds
            return self._now


class ScaledClock:
    """Wall-clock time running `speed` times faster, for demos where training should take seconds."""

    def __init__(self, speed: float, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._speed = speed
        self._origin = time.time() if start is None else start
        self._t0 = time.monotonic()

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._t0) * self._speed
